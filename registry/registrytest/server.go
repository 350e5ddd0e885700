package registrytest

import (
	"context"
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
`

// StartDistribution starts the real distribution registry server on a free
// 127.0.0.1 port with filesystem storage in t.TempDir() and returns its
// host:port once /v2/ answers. The server is killed when the test ends. The
// test is skipped when the binary is not installed.
func StartDistribution(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(DistributionBinary); err != nil {
		t.Skipf("distribution registry not installed: %v", err)
	}
	dir := t.TempDir()
	var lastErr error
	// A free port can be taken between Close and the server's bind, so try
	// a few times.
	for attempt := 0; attempt < 3; attempt++ {
		host, err := startDistribution(t, dir, attempt)
		if err == nil {
			return host
		}
		lastErr = err
	}
	t.Fatalf("starting distribution registry: %v", lastErr)
	return ""
}

func startDistribution(t testing.TB, dir string, attempt int) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	host := l.Addr().String()
	l.Close()

	storage := filepath.Join(dir, fmt.Sprintf("storage-%d", attempt))
	cfg := filepath.Join(dir, fmt.Sprintf("config-%d.yml", attempt))
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(distributionConfig, storage, host)), 0o644); err != nil {
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
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/v2/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
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
