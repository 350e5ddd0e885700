package registrytest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// DistributionBinary is the path of the distribution registry server
// (Debian package docker-registry).
const DistributionBinary = "/usr/bin/docker-registry"

// NewInProcess starts go-containerregistry's in-memory registry on
// 127.0.0.1 and returns its host:port. It is closed when the test ends.
func NewInProcess(t testing.TB) string {
	t.Helper()
	return NewInProcessHandler(t, func(h http.Handler) http.Handler { return h })
}

// NewInProcessHandler is NewInProcess with the registry's handler wrapped by
// wrap, e.g. to require authentication or to corrupt responses.
func NewInProcessHandler(t testing.TB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(wrap(h))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// BasicAuth wraps h so that every request must carry the basic credentials
// user:pass; others get 401 with a Basic challenge, like a registry with
// htpasswd auth.
func BasicAuth(h http.Handler, user, pass string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="registrytest"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		h.ServeHTTP(w, r)
	})
}

const distributionConfig = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: %s
%s`

// DistributionOptions configure StartDistributionWith.
type DistributionOptions struct {
	// Users, when set, protects the registry with htpasswd basic auth for
	// these user -> password pairs (bcrypt entries made by Debian's
	// htpasswd, package apache2-utils; the test is skipped without it).
	Users map[string]string
	// TLS, when set, serves HTTPS with this certificate (see NewCA).
	TLS *Cert
}

// StartDistribution starts the real distribution registry server on a free
// 127.0.0.1 port with filesystem storage in t.TempDir() and returns its
// host:port once /v2/ answers. The server is killed when the test ends. The
// test is skipped when the binary is not installed.
func StartDistribution(t testing.TB) string {
	t.Helper()
	return StartDistributionWith(t, DistributionOptions{})
}

// StartDistributionWith is StartDistribution with authentication and TLS.
func StartDistributionWith(t testing.TB, o DistributionOptions) string {
	t.Helper()
	if _, err := os.Stat(DistributionBinary); err != nil {
		t.Skipf("distribution registry not installed: %v", err)
	}
	dir := t.TempDir()
	extra, err := distributionExtra(t, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	var lastErr error
	// A free port can be taken between Close and the server's bind, so try
	// a few times.
	for attempt := 0; attempt < 3; attempt++ {
		host, err := startDistribution(t, dir, attempt, extra, o.TLS)
		if err == nil {
			return host
		}
		lastErr = err
	}
	t.Fatalf("starting distribution registry: %v", lastErr)
	return ""
}

func startDistribution(t testing.TB, dir string, attempt int, extra string, cert *Cert) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	host := l.Addr().String()
	l.Close()

	storage := filepath.Join(dir, fmt.Sprintf("storage-%d", attempt))
	cfg := filepath.Join(dir, fmt.Sprintf("config-%d.yml", attempt))
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(distributionConfig, storage, host, extra)), 0o644); err != nil {
		return "", err
	}
	logFile, err := os.Create(filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt)))
	if err != nil {
		return "", err
	}
	cmd := exec.Command(DistributionBinary, "serve", cfg)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
		logFile.Close()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	client, scheme := http.DefaultClient, "http"
	if cert != nil {
		client, scheme = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}}}, "https"
	}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+"/v2/", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			// 401 is the answer of a registry with auth: it is up.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				t.Cleanup(stop)
				return host, nil
			}
		}
		select {
		case err := <-exited:
			exited <- err
			stop()
			out, _ := os.ReadFile(logFile.Name())
			return "", fmt.Errorf("docker-registry exited (%v): %s", err, out)
		case <-ctx.Done():
			stop()
			return "", fmt.Errorf("docker-registry on %s did not answer /v2/: %w", host, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// distributionExtra writes the htpasswd file and certificate of o into dir
// and returns the config lines that use them.
func distributionExtra(t testing.TB, dir string, o DistributionOptions) (string, error) {
	var extra strings.Builder
	if o.TLS != nil {
		certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
		if err := os.WriteFile(certFile, o.TLS.CertPEM, 0o600); err != nil {
			return "", err
		}
		if err := os.WriteFile(keyFile, o.TLS.KeyPEM, 0o600); err != nil {
			return "", err
		}
		fmt.Fprintf(&extra, "  tls:\n    certificate: %s\n    key: %s\n", certFile, keyFile)
	}
	if len(o.Users) > 0 {
		file := filepath.Join(dir, "htpasswd")
		if err := WriteHtpasswd(t, file, o.Users); err != nil {
			return "", err
		}
		fmt.Fprintf(&extra, "auth:\n  htpasswd:\n    realm: registrytest\n    path: %s\n", file)
	}
	return extra.String(), nil
}

// HtpasswdBinary makes the bcrypt entries docker-registry requires
// (Debian package apache2-utils).
const HtpasswdBinary = "/usr/bin/htpasswd"

// WriteHtpasswd writes an htpasswd file with a bcrypt entry per user. It
// skips the test when htpasswd is not installed.
func WriteHtpasswd(t testing.TB, file string, users map[string]string) error {
	if _, err := os.Stat(HtpasswdBinary); err != nil {
		t.Skipf("htpasswd not installed (apt-get install apache2-utils): %v", err)
	}
	var buf strings.Builder
	for u, p := range users {
		// -i reads the password from stdin, so it is not in argv.
		cmd := exec.Command(HtpasswdBinary, "-niBC", "5", u)
		cmd.Stdin = strings.NewReader(p)
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("htpasswd for %s: %w", u, err)
		}
		buf.WriteString(strings.TrimSpace(string(out)) + "\n")
	}
	return os.WriteFile(file, []byte(buf.String()), 0o600)
}
