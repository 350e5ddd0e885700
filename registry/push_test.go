package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/registrytest"
	"github.com/builderdev/builder/llb"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// fastRetry keeps the retry tests quick.
var fastRetry = remote.Backoff{Duration: 5 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 5}

// appImage is busybox plus n random layers.
func appImage(t *testing.T, n int) v1.Image {
	t.Helper()
	img := busybox(t)
	for i := 0; i < n; i++ {
		l, err := random.Layer(2048+int64(i)*512, "application/vnd.oci.image.layer.v1.tar+gzip")
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func pushClient(t *testing.T, o Options) *Client {
	t.Helper()
	if o.Blobs == nil {
		o.Blobs = newStore(t)
	}
	if o.Keychain == nil {
		o.Keychain = authn.NewMultiKeychain()
	}
	if o.Retry.Steps == 0 {
		o.Retry = fastRetry
	}
	return New(o)
}

// checkRemote fails t unless ref names img in its registry, whole and valid.
func checkRemote(t *testing.T, ref string, img v1.Image, o ...remote.Option) {
	t.Helper()
	r, err := registrytest.ParseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(r, o...)
	if err != nil {
		t.Fatalf("reading back %s: %v", ref, err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("%s is %s, want %s", ref, d, want)
	}
}

func TestPush(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, host string) {
		img := appImage(t, 2)
		c := pushClient(t, Options{})
		var mu sync.Mutex
		last := map[string][2]int64{}
		d, err := c.Push(context.Background(), img, []string{host + "/app:1", host + "/app:2", host + "/app:1", host + "/other"}, PushOptions{
			Progress: func(ref string, done, total int64) {
				mu.Lock()
				last[ref] = [2]int64{done, total}
				mu.Unlock()
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := img.Digest()
		if d.String() != want.String() {
			t.Fatalf("Push returned %s, want %s", d, want)
		}
		for _, ref := range []string{host + "/app:1", host + "/app:2", host + "/other:latest"} {
			checkRemote(t, ref, img)
			p, ok := last[ref]
			if !ok || p[0] != p[1] || p[1] <= 0 {
				t.Errorf("progress of %s ended at %v", ref, p)
			}
		}
		if len(last) != 3 {
			t.Errorf("progress for %d references, want 3 (duplicates pushed once): %v", len(last), last)
		}
		// Traffic counts at least every layer once (the first push
		// uploads them) and the manifests.
		var layerBytes int64
		ls, _ := img.Layers()
		for _, l := range ls {
			n, _ := l.Size()
			layerBytes += n
		}
		if _, sent := c.Traffic(); sent < layerBytes {
			t.Errorf("Traffic sent %d bytes, want at least the layers' %d", sent, layerBytes)
		}
	})
}

func TestPushErrors(t *testing.T) {
	t.Parallel()
	host := registrytest.NewInProcess(t)
	img := appImage(t, 0)
	c := pushClient(t, Options{})
	d, _ := img.Digest()
	tests := []struct {
		name string
		refs []string
		want string
	}{
		{"none", nil, "no reference"},
		{"digest only", []string{host + "/x@" + d.String()}, "needs a tag"},
		{"bad", []string{host + "/UPPER:1"}, "pushing " + host + "/UPPER:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Push(context.Background(), img, tt.refs, PushOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestPushMount: blobs of the base image, resolved from one repository,
// are mounted into another of the same registry instead of uploaded.
func TestPushMount(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test")
	}
	reg := registrytest.StartDistribution(t)
	proxy := registrytest.NewFaultProxy(t, reg, nil)
	host := proxy.Host
	registrytest.PushBusybox(t, host+"/base:1")
	c := pushClient(t, Options{StateDir: t.TempDir()})
	if _, err := c.Resolve(context.Background(), host+"/base:1", hostPlatform); err != nil {
		t.Fatal(err)
	}
	img := appImage(t, 1)
	proxy.Reset()
	if _, err := c.Push(context.Background(), img, []string{host + "/app:1"}, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	checkRemote(t, host+"/app:1", img)
	// Uploaded: the new layer and the config; the busybox layer is mounted.
	if n := proxy.Count("PUT uploads"); n != 2 {
		t.Errorf("%d blob uploads, want 2 (busybox layer mounted)", n)
	}
	if n := proxy.Count("POST uploads"); n != 3 {
		t.Errorf("%d upload starts, want 3 (one is the mount)", n)
	}

	// A new process (new client, same state dir) mounts from what the
	// first one pushed.
	c2 := pushClient(t, Options{StateDir: c.stateDir})
	proxy.Reset()
	if _, err := c2.Push(context.Background(), img, []string{host + "/copy:1"}, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	checkRemote(t, host+"/copy:1", img)
	if n := proxy.Count("PUT uploads"); n != 0 {
		t.Errorf("%d blob uploads to a second repository, want 0 (all mounted)", n)
	}
}

// TestPushRetries: 503s, 429s and reset connections on a share of the
// requests do not fail a push or a pull.
func TestPushRetries(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	reg := registrytest.StartDistribution(t)
	for _, f := range []registrytest.Fault{registrytest.Unavailable, registrytest.TooMany, registrytest.Drop} {
		t.Run(fmt.Sprint(f), func(t *testing.T) {
			// At most 4 faults in all, fewer than DefaultRetry's 5 tries:
			// with concurrent requests one request can draw every fault
			// in turn, and must still get through.
			proxy := registrytest.NewFaultProxy(t, reg, registrytest.EveryNth(3, DefaultRetry.Steps-1, f))
			img := appImage(t, 3)
			ref := fmt.Sprintf("%s/retry%d:1", proxy.Host, f)
			c := pushClient(t, Options{})
			if _, err := c.Push(context.Background(), img, []string{ref}, PushOptions{}); err != nil {
				t.Fatalf("push with faults: %v", err)
			}
			if proxy.Faults() == 0 {
				t.Fatal("no fault was injected")
			}
			checkRemote(t, reg+"/"+strings.SplitN(ref, "/", 2)[1], img)

			proxy.Reset()
			proxy.SetPolicy(registrytest.EveryNth(2, 4, f))
			r, err := c.Resolve(context.Background(), ref, hostPlatform)
			if err == nil {
				_, err = c.Pull(context.Background(), r)
			}
			if err != nil {
				t.Fatalf("pull with faults: %v", err)
			}
			if proxy.Faults() == 0 {
				t.Fatal("no fault was injected into the pull")
			}
		})
	}
}

// TestPushResume: a push that failed part way uploads, when run again,
// only the blobs the registry does not have yet.
func TestPushResume(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test")
	}
	reg := registrytest.StartDistribution(t)
	img := appImage(t, 4)
	ls, _ := img.Layers()
	bad, _ := ls[len(ls)-1].Digest()
	// Every upload of the last layer fails.
	proxy := registrytest.NewFaultProxy(t, reg, func(_ int, r *http.Request) registrytest.Fault {
		if r.Method == http.MethodPut && r.URL.Query().Get("digest") == bad.String() {
			return registrytest.Unavailable
		}
		return registrytest.Pass
	})
	ref := proxy.Host + "/resume:1"
	c := pushClient(t, Options{Jobs: 1})
	if _, err := c.Push(context.Background(), img, []string{ref}, PushOptions{}); err == nil {
		t.Fatal("push succeeded although a blob could not be uploaded")
	}
	if n := proxy.Count("PUT manifests"); n != 0 {
		t.Fatalf("manifest pushed (%d) before its blobs", n)
	}
	// Which blobs are missing now?
	r, _ := registrytest.ParseRef(reg + "/resume:1")
	m, _ := img.Manifest()
	missing := 0
	for _, desc := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		req, _ := http.NewRequest(http.MethodHead, "http://"+reg+"/v2/"+r.Context().RepositoryStr()+"/blobs/"+desc.Digest.String(), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			missing++
		}
	}
	if missing == 0 || missing == len(m.Layers)+1 {
		t.Fatalf("%d of %d blobs missing after the failed push; the test wants some but not all", missing, len(m.Layers)+1)
	}

	proxy.SetPolicy(nil)
	proxy.Reset()
	if _, err := c.Push(context.Background(), img, []string{ref}, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := proxy.Count("PUT uploads"); n != missing {
		t.Errorf("second push uploaded %d blobs, %d were missing", n, missing)
	}
	checkRemote(t, ref, img)
}

// TestPushAuth pushes to the real registry with htpasswd auth, with
// credentials from DOCKER_CONFIG, and checks CheckLogin.
func TestPushAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const user, pass = "pusher", "pa55-w0rd-xyz"
	host := registrytest.StartDistributionWith(t, registrytest.DistributionOptions{Users: map[string]string{user: pass}})
	img := appImage(t, 1)
	ctx := context.Background()

	t.Setenv("DOCKER_CONFIG", t.TempDir())
	anon := New(Options{Blobs: newStore(t), Retry: fastRetry})
	_, err := anon.Push(ctx, img, []string{host + "/private:1"}, PushOptions{})
	if err == nil {
		t.Fatal("anonymous push succeeded")
	}
	if err := anon.CheckLogin(ctx, host, user, "wrong"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("CheckLogin with a wrong password: %v", err)
	} else if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error %q shows the password", err)
	}
	if err := anon.CheckLogin(ctx, host, user, pass); err != nil {
		t.Fatalf("CheckLogin: %v", err)
	}
	// A login needs no blob store; pulling does.
	noBlobs := New(Options{Retry: fastRetry})
	if err := noBlobs.CheckLogin(ctx, host, user, pass); err != nil {
		t.Fatalf("CheckLogin without a blob store: %v", err)
	}
	if _, err := noBlobs.Resolve(ctx, host+"/private:1", llb.Platform{}); err == nil || !strings.Contains(err.Error(), "no blob store") {
		t.Errorf("Resolve without a blob store: %v", err)
	}
	if _, err := StoreCredentials(ConfigDir(), host, user, pass); err != nil {
		t.Fatal(err)
	}
	c := New(Options{Blobs: newStore(t), Retry: fastRetry}) // DefaultKeychain
	if _, err := c.Push(ctx, img, []string{host + "/private:1"}, PushOptions{}); err != nil {
		t.Fatalf("push with stored credentials: %v", err)
	}
	r, err := c.Resolve(ctx, host+"/private:1", hostPlatform)
	if err == nil {
		_, err = c.Pull(ctx, r)
	}
	if err != nil {
		t.Fatalf("pull with stored credentials: %v", err)
	}
	checkRemote(t, host+"/private:1", img, remote.WithAuth(&authn.Basic{Username: user, Password: pass}))
}

// TestTLS pushes to the real registry over HTTPS with a CA made by the test.
func TestTLS(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test")
	}
	cert := registrytest.NewCA(t)
	host := registrytest.StartDistributionWith(t, registrytest.DistributionOptions{TLS: cert})
	img := appImage(t, 1)
	ctx := context.Background()

	// 127.0.0.1 may fall back to plain HTTP, but an HTTPS registry with an
	// unknown CA must not be trusted (nor spoken to in plain text).
	c := pushClient(t, Options{})
	if _, err := c.Push(ctx, img, []string{host + "/tls:1"}, PushOptions{}); err == nil {
		t.Fatal("push to a registry with an unknown CA succeeded")
	}
	c = pushClient(t, Options{CAFiles: []string{cert.CAFile}})
	if _, err := c.Push(ctx, img, []string{host + "/tls:1"}, PushOptions{}); err != nil {
		t.Fatalf("push with --tls-ca: %v", err)
	}
	r, err := c.Resolve(ctx, host+"/tls:1", hostPlatform)
	if err == nil {
		_, err = c.Pull(ctx, r)
	}
	if err != nil {
		t.Fatalf("pull over TLS: %v", err)
	}
	if err := c.CheckLogin(ctx, host, "any", "thing"); err != nil {
		t.Fatalf("CheckLogin on a registry without auth: %v", err)
	}

	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o644)
	c = pushClient(t, Options{CAFiles: []string{bad}})
	if _, err := c.Push(ctx, img, []string{host + "/tls:1"}, PushOptions{}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad CA file: %v", err)
	}
}

// TestRedirectDropsAuth: a registry that redirects blob downloads to
// another server (another port of the same loopback address) must not
// hand it the credentials.
func TestRedirectDropsAuth(t *testing.T) {
	const user, pass = "redir", "secret-redirect"
	var leaked, served atomic.Int32
	var storage http.Handler
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
		storage.ServeHTTP(w, r)
	}))
	defer other.Close()
	host := registrytest.NewInProcessHandler(t, func(h http.Handler) http.Handler {
		storage = h
		return registrytest.BasicAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
				http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
				return
			}
			h.ServeHTTP(w, r)
		}), user, pass)
	})
	img := appImage(t, 1)
	ref, _ := registrytest.ParseRef(host + "/redir:1")
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: user, Password: pass})); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)), 0o600)
	t.Setenv("DOCKER_CONFIG", dir)

	c := New(Options{Blobs: newStore(t)})
	r, err := c.Resolve(context.Background(), host+"/redir:1", hostPlatform)
	if err == nil {
		_, err = c.Pull(context.Background(), r)
	}
	if err != nil {
		t.Fatal(err)
	}
	if served.Load() == 0 {
		t.Fatal("no request was redirected")
	}
	if n := leaked.Load(); n != 0 {
		t.Fatalf("%d of %d redirected requests carried the Authorization header", n, served.Load())
	}
}

func TestTagFallback(t *testing.T) {
	t.Parallel()
	host := registrytest.NewInProcess(t)
	img := busybox(t)
	registrytest.Push(t, img, host+"/base:1")
	want, _ := img.Digest()
	state := t.TempDir()
	blobs := newStore(t)
	ctx := context.Background()
	if _, err := New(Options{Blobs: blobs, StateDir: state}).Resolve(ctx, host+"/base:1", hostPlatform); err != nil {
		t.Fatal(err)
	}
	offline := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return nil, &netError{}
	})
	tests := []struct {
		name string
		pull bool
		ok   bool
	}{
		{"offline uses the recorded digest", false, true},
		{"--pull needs the registry", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Options{Blobs: blobs, StateDir: state, Pull: tt.pull, Transport: offline, Retry: remote.Backoff{Duration: time.Millisecond, Steps: 1}})
			r, err := c.Resolve(ctx, host+"/base:1", hostPlatform)
			if !tt.ok {
				if err == nil {
					t.Fatal("resolved without the registry")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.ManifestDigest.String() != want.String() {
				t.Fatalf("resolved %s, want %s", r.ManifestDigest, want)
			}
		})
	}
	// A registry that answers (here: the tag is unknown) is believed.
	c := New(Options{Blobs: blobs, StateDir: state})
	if _, err := c.Resolve(ctx, host+"/base:2", hostPlatform); err == nil {
		t.Fatal("unknown tag resolved")
	}
}

// netError is a connection failure.
type netError struct{}

func (*netError) Error() string   { return "connection refused" }
func (*netError) Timeout() bool   { return false }
func (*netError) Temporary() bool { return false }
