package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/registrytest"
	"github.com/builderdev/builder/llb"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// counter is an http.RoundTripper that counts requests by method and kind.
type counter struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []string // "GET blobs", "HEAD manifests", ...
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	kind := "other"
	switch {
	case strings.Contains(req.URL.Path, "/blobs/"):
		kind = "blobs"
	case strings.Contains(req.URL.Path, "/manifests/"):
		kind = "manifests"
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, req.Method+" "+kind)
	c.mu.Unlock()
	return c.base.RoundTrip(req)
}

func (c *counter) count(what string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.reqs {
		if what == "" || r == what {
			n++
		}
	}
	return n
}

func (c *counter) reset() {
	c.mu.Lock()
	c.reqs = nil
	c.mu.Unlock()
}

func newStore(t *testing.T) *cache.BlobStore {
	t.Helper()
	s, err := cache.OpenBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newClient(t *testing.T, blobs *cache.BlobStore) (*Client, *counter) {
	t.Helper()
	cnt := &counter{base: http.DefaultTransport}
	return New(Options{Blobs: blobs, Transport: cnt, Keychain: authn.NewMultiKeychain()}), cnt
}

var hostPlatform = llb.Platform{OS: "linux", Architecture: runtime.GOARCH}

// servers are the registries every end-to-end test runs against.
var servers = []struct {
	name  string
	start func(testing.TB) string
}{
	{"inprocess", registrytest.NewInProcess},
	{"distribution", registrytest.StartDistribution},
}

func forEachServer(t *testing.T, f func(t *testing.T, host string)) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			if s.name == "distribution" && testing.Short() {
				t.Skip("integration test")
			}
			f(t, s.start(t))
		})
	}
}

func busybox(t *testing.T) v1.Image {
	t.Helper()
	img, err := registrytest.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestResolveAndPull(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, host string) {
		img := busybox(t)
		registrytest.Push(t, img, host+"/base:1")
		want, _ := img.Digest()
		wantCfg, _ := img.RawConfigFile()

		tests := []struct {
			name, ref, pinned string
		}{
			{"tag", host + "/base:1", host + "/base:1@" + want.String()},
			{"digest", host + "/base@" + want.String(), host + "/base@" + want.String()},
			{"tag and digest", host + "/base:1@" + want.String(), host + "/base:1@" + want.String()},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				blobs := newStore(t)
				c, cnt := newClient(t, blobs)
				ctx := context.Background()
				r, err := c.Resolve(ctx, tt.ref, hostPlatform)
				if err != nil {
					t.Fatal(err)
				}
				if r.Pinned != tt.pinned || r.ManifestDigest.String() != want.String() || !bytes.Equal(r.Config, wantCfg) {
					t.Fatalf("resolved %s (%s), want %s", r.Pinned, r.ManifestDigest, tt.pinned)
				}
				pinned, _, cfg, err := c.ResolveImageConfig(ctx, tt.ref, hostPlatform)
				if err != nil || pinned != tt.pinned || !bytes.Equal(cfg, wantCfg) {
					t.Fatalf("ResolveImageConfig = %s, %v", pinned, err)
				}

				cnt.reset()
				var mu sync.Mutex
				var progress []string
				pctx := WithPullProgress(ctx, func(d digest.Digest, done, total int64, finished bool) {
					mu.Lock()
					defer mu.Unlock()
					progress = append(progress, fmt.Sprintf("%s %d/%d %v", d, done, total, finished))
				})
				layers, err := c.Pull(pctx, r)
				if err != nil {
					t.Fatal(err)
				}
				if len(progress) < 2 || !strings.HasPrefix(progress[0], layers[0].Digest.String()+" 0/") ||
					progress[len(progress)-1] != fmt.Sprintf("%s %d/%d true", layers[0].Digest, layers[0].Size, layers[0].Size) {
					t.Errorf("pull progress %v", progress)
				}
				if n := cnt.count("GET blobs"); n != 1 {
					t.Errorf("first pull: %d blob GETs, want 1 (%v)", n, cnt.reqs)
				}
				wl, _ := img.Layers()
				if len(layers) != len(wl) {
					t.Fatalf("%d layers, want %d", len(layers), len(wl))
				}
				for i, l := range layers {
					d, _ := wl[i].Digest()
					diff, _ := wl[i].DiffID()
					sz, _ := wl[i].Size()
					if l.Digest.String() != d.String() || l.DiffID.String() != diff.String() || l.Size != sz || l.MediaType != string(types.OCILayer) {
						t.Errorf("layer %d = %+v", i, l)
					}
					if n, err := blobs.Stat(l.Digest); err != nil || n != l.Size {
						t.Errorf("layer %d not stored: %d, %v", i, n, err)
					}
				}

				// A second pull downloads nothing, it does not even ask.
				cnt.reset()
				if _, err := c.Pull(ctx, r); err != nil {
					t.Fatal(err)
				}
				if n := cnt.count(""); n != 0 {
					t.Errorf("second pull made %d requests: %v", n, cnt.reqs)
				}

				// Resolving again: a tag asks the registry with one HEAD,
				// everything else is stored.
				cnt.reset()
				if _, err := c.Resolve(ctx, tt.ref, hostPlatform); err != nil {
					t.Fatal(err)
				}
				if n, heads := cnt.count(""), cnt.count("HEAD manifests"); strings.Contains(tt.ref, "@") && n != 0 ||
					!strings.Contains(tt.ref, "@") && (n != 1 || heads != 1) {
					t.Errorf("second resolve of %s made requests %v", tt.ref, cnt.reqs)
				}
			})
		}
	})
}

// failing is a transport that fails every request.
type failing struct{ n atomic.Int32 }

func (f *failing) RoundTrip(req *http.Request) (*http.Response, error) {
	f.n.Add(1)
	return nil, fmt.Errorf("offline: %s", req.URL)
}

func TestResolvePinnedOffline(t *testing.T) {
	t.Parallel()
	host := registrytest.NewInProcess(t)
	pinned := registrytest.PushBusybox(t, host+"/base:1")
	blobs := newStore(t)
	c, _ := newClient(t, blobs)
	ctx := context.Background()
	r, err := c.Resolve(ctx, pinned, hostPlatform)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pull(ctx, r); err != nil {
		t.Fatal(err)
	}

	off := &failing{}
	c2 := New(Options{Blobs: blobs, Transport: off})
	r2, err := c2.Resolve(ctx, pinned, hostPlatform)
	if err != nil {
		t.Fatalf("offline resolve of a stored digest: %v", err)
	}
	if _, err := c2.Pull(ctx, r2); err != nil {
		t.Fatalf("offline pull of stored layers: %v", err)
	}
	if off.n.Load() != 0 {
		t.Errorf("%d requests made", off.n.Load())
	}
	if _, err := c2.Resolve(ctx, host+"/base:1", hostPlatform); err == nil {
		t.Error("resolving a tag offline succeeded; a tag must ask the registry")
	}
}

// platformImage is busybox claiming to be for p.
func platformImage(t *testing.T, p v1.Platform) v1.Image {
	t.Helper()
	img := busybox(t)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMultiPlatform(t *testing.T) {
	t.Parallel()
	forEachServer(t, func(t *testing.T, host string) {
		plats := []v1.Platform{
			{OS: "linux", Architecture: "amd64"},
			{OS: "linux", Architecture: "arm64", Variant: "v8"},
			{OS: "linux", Architecture: "arm", Variant: "v7"},
			{OS: "linux", Architecture: "arm", Variant: "v6"},
		}
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		digests := map[string]v1.Hash{}
		for _, p := range plats {
			img := platformImage(t, p)
			d, _ := img.Digest()
			digests[p.String()] = d
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
		}
		// An attestation-like entry that must never be selected.
		att, err := random.Image(100, 1)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}}})
		idxPinned := registrytest.PushIndex(t, idx, host+"/multi:1")

		tests := []struct {
			want llb.Platform
			got  string // key of digests, "" for an error
		}{
			{llb.Platform{OS: "linux", Architecture: "amd64"}, "linux/amd64"},
			{llb.Platform{OS: "linux", Architecture: "x86_64"}, "linux/amd64"},
			{llb.Platform{OS: "linux", Architecture: "arm64"}, "linux/arm64/v8"},
			{llb.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "linux/arm64/v8"},
			{llb.Platform{OS: "linux", Architecture: "arm"}, "linux/arm/v7"},
			{llb.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, "linux/arm/v6"},
			{llb.Platform{OS: "linux", Architecture: "s390x"}, ""},
			{llb.Platform{OS: "windows", Architecture: "amd64"}, ""},
		}
		c, _ := newClient(t, newStore(t))
		for _, tt := range tests {
			for _, ref := range []string{host + "/multi:1", idxPinned} {
				t.Run(tt.want.String()+"/"+ref, func(t *testing.T) {
					t.Parallel()
					r, err := c.Resolve(context.Background(), ref, tt.want)
					if tt.got == "" {
						if err == nil {
							t.Fatalf("resolved %s", r.Pinned)
						}
						for _, s := range []string{"pulling " + ref, tt.want.String(), "linux/amd64", "linux/arm64/v8", "linux/arm/v7"} {
							if !strings.Contains(err.Error(), s) {
								t.Errorf("error %q does not mention %q", err, s)
							}
						}
						if strings.Contains(err.Error(), "unknown/unknown") {
							t.Errorf("error %q lists the attestation", err)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					d := digests[tt.got]
					if r.ManifestDigest.String() != d.String() || !strings.HasSuffix(r.Pinned, "@"+d.String()) {
						t.Fatalf("resolved %s, want %s (%s)", r.Pinned, d, tt.got)
					}
					if ref == host+"/multi:1" && r.Pinned != host+"/multi:1@"+d.String() {
						t.Errorf("pinned %s", r.Pinned)
					}
					// Named keeps the index's digest: the tag's or the
					// one written, as BuildKit names the FROM step.
					_, idxDigest, _ := strings.Cut(idxPinned, "@")
					if wantNamed := host + "/multi:1@" + idxDigest; ref == host+"/multi:1" && r.Named != wantNamed {
						t.Errorf("named %s, want %s", r.Named, wantNamed)
					}
					if ref == idxPinned && r.Named != idxPinned {
						t.Errorf("named %s, want %s", r.Named, idxPinned)
					}
				})
			}
		}
	})
}

func TestErrors(t *testing.T) {
	t.Parallel()
	host := registrytest.NewInProcess(t)
	registrytest.PushBusybox(t, host+"/base:1")
	c, _ := newClient(t, newStore(t))
	ctx := context.Background()
	tests := []struct {
		ref, want string
	}{
		{host + "/x:1", "pulling " + host + "/x:1: "},
		{host + "/base:2", "pulling " + host + "/base:2: "},
		{host + "/base@sha256:" + strings.Repeat("a", 64), "pulling " + host + "/base@sha256:"},
		{host + "/base@sha256:short", "invalid digest"},
		{"UPPER/case:1", "pulling UPPER/case:1"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			t.Parallel()
			_, err := c.Resolve(ctx, tt.ref, hostPlatform)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(tt.ref, "/x:1") && !strings.Contains(err.Error(), "unknown") {
				t.Errorf("error %q does not say the manifest is unknown", err)
			}
		})
	}
}

// corrupting serves wrong bytes (same length) for one blob.
func corrupting(target *string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && *target != "" && strings.HasSuffix(r.URL.Path, "/blobs/"+*target) {
				rec := &recorder{header: http.Header{}}
				h.ServeHTTP(rec, r)
				body := rec.buf.Bytes()
				if len(body) > 100 {
					body[100] ^= 0xff
				}
				for k, v := range rec.header {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.code)
				w.Write(body)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

type recorder struct {
	header http.Header
	code   int
	buf    bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(p []byte) (int, error) { return r.buf.Write(p) }
func (r *recorder) WriteHeader(code int)        { r.code = code }

func TestCorruptBlobRejected(t *testing.T) {
	t.Parallel()
	var target string
	host := registrytest.NewInProcessHandler(t, corrupting(&target))
	registrytest.PushBusybox(t, host+"/base:1")
	blobs := newStore(t)
	c, _ := newClient(t, blobs)
	ctx := context.Background()
	r, err := c.Resolve(ctx, host+"/base:1", hostPlatform)
	if err != nil {
		t.Fatal(err)
	}
	layer := r.Manifest.Layers[0].Digest
	target = layer.String()
	_, err = c.Pull(ctx, r)
	if err == nil {
		t.Fatal("pull of a corrupt blob succeeded")
	}
	if !strings.Contains(err.Error(), "pulling "+host+"/base:1@") || !strings.Contains(err.Error(), layer.String()) {
		t.Errorf("error %q does not name the image and layer", err)
	}
	if _, err := blobs.Stat(digest.Digest(layer.String())); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("corrupt layer stored: %v", err)
	}
	// Everything in the store is stored under its own digest, and nothing
	// is left in ingest.
	assertStoreConsistent(t, blobs, 2) // manifest and config

	// Once the registry serves the right bytes the pull works.
	target = ""
	if _, err := c.Pull(ctx, r); err != nil {
		t.Fatal(err)
	}
	assertStoreConsistent(t, blobs, 3)
}

func assertStoreConsistent(t *testing.T, blobs *cache.BlobStore, want int) {
	t.Helper()
	root := filepath.Dir(filepath.Dir(filepath.Dir(blobs.Path(digest.FromString("")))))
	ents, err := os.ReadDir(filepath.Join(root, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != want {
		t.Errorf("%d blobs stored, want %d", len(ents), want)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(root, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if got := digest.FromBytes(b).Encoded(); got != e.Name() {
			t.Errorf("blob %s holds content %s", e.Name(), got)
		}
	}
	if ing, _ := os.ReadDir(filepath.Join(root, "ingest")); len(ing) != 0 {
		t.Errorf("ingest not empty: %v", ing)
	}
}

func TestAuth(t *testing.T) {
	const user, pass = "builder", "s3cr3t-pa55"
	host := registrytest.NewInProcessHandler(t, func(h http.Handler) http.Handler {
		return registrytest.BasicAuth(h, user, pass)
	})
	img := busybox(t)
	ref, err := registrytest.ParseRef(host + "/private:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: user, Password: pass})); err != nil {
		t.Fatal(err)
	}

	writeConfig := func(u, p string) {
		dir := t.TempDir()
		auth := base64.StdEncoding.EncodeToString([]byte(u + ":" + p))
		cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("DOCKER_CONFIG", dir)
	}
	tests := []struct {
		name       string
		user, pass string
		ok         bool
	}{
		{"no credentials", "", "", false},
		{"wrong password", user, "wrong-" + pass, false},
		{"docker config", user, pass, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.user != "" {
				writeConfig(tt.user, tt.pass)
			} else {
				t.Setenv("DOCKER_CONFIG", t.TempDir())
			}
			blobs := newStore(t)
			c := New(Options{Blobs: blobs}) // DefaultKeychain
			r, err := c.Resolve(context.Background(), host+"/private:1", hostPlatform)
			if err == nil {
				_, err = c.Pull(context.Background(), r)
			}
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("unauthenticated pull succeeded")
			}
			if !strings.Contains(err.Error(), "pulling "+host+"/private:1") {
				t.Errorf("error %q does not name the reference", err)
			}
			if strings.Contains(err.Error(), pass) || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString([]byte(user+":"))) {
				t.Errorf("error %q shows credentials", err)
			}
		})
	}
}

func TestManifestTooLarge(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte(" "), MaxManifestSize+10)
	copy(big, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[`)
	big[len(big)-2], big[len(big)-1] = ']', '}'
	tests := []struct {
		name     string
		headFail bool // no HEAD: the client falls back to GET, streamed without length
	}{
		{"content-length", false},
		{"chunked", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			host := registrytest.NewInProcessHandler(t, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !strings.HasPrefix(r.URL.Path, "/v2/big/manifests/") {
						h.ServeHTTP(w, r)
						return
					}
					if r.Method == http.MethodHead && tt.headFail {
						w.WriteHeader(http.StatusMethodNotAllowed)
						return
					}
					w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
					w.Header().Set("Docker-Content-Digest", digest.FromBytes(big).String())
					if !tt.headFail {
						w.Header().Set("Content-Length", fmt.Sprint(len(big)))
					}
					if r.Method == http.MethodHead {
						return
					}
					for off := 0; off < len(big); off += 1 << 20 {
						w.Write(big[off:min(off+1<<20, len(big))])
						w.(http.Flusher).Flush()
					}
				})
			})
			c, _ := newClient(t, newStore(t))
			_, err := c.Resolve(context.Background(), host+"/big:1", hostPlatform)
			if !errors.Is(err, ErrManifestTooLarge) {
				t.Fatalf("error %v, want ErrManifestTooLarge", err)
			}
		})
	}
}

func TestAllowHTTP(t *testing.T) {
	c := New(Options{Blobs: newStore(t), Insecure: []string{"registry.lan:5000", "10.1.2.3"}})
	tests := []struct {
		host string
		want bool
	}{
		{"localhost:5000", true},
		{"localhost", true},
		{"127.0.0.1:5000", true},
		{"127.3.4.5:80", true},
		{"[::1]:5000", true},
		{"registry.lan:5000", true},
		{"registry.lan:5001", false},
		{"10.1.2.3:5000", true},
		{"192.168.1.2:5000", false},
		{"index.docker.io", false},
	}
	for _, tt := range tests {
		if got := c.allowHTTP(tt.host); got != tt.want {
			t.Errorf("allowHTTP(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestPlainHTTPRefused(t *testing.T) {
	// A registry on a private address is not spoken to over plain HTTP
	// unless listed; go-containerregistry alone would fall back to it.
	var seen atomic.Int32
	tr := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		seen.Add(1)
		return nil, fmt.Errorf("no network in this test")
	})
	c := New(Options{Blobs: newStore(t), Transport: tr})
	_, err := c.Resolve(context.Background(), "192.168.77.1:5000/x:1", hostPlatform)
	if !errors.Is(err, ErrInsecure) {
		t.Fatalf("error %v, want ErrInsecure", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestParse(t *testing.T) {
	t.Parallel()
	c := New(Options{Blobs: newStore(t)})
	d := "sha256:" + strings.Repeat("b", 64)
	pd := digest.Digest("sha256:" + strings.Repeat("c", 64))
	tests := []struct {
		in, pinned string
		digest     bool
	}{
		{"busybox", "index.docker.io/library/busybox:latest@" + pd.String(), false},
		{"busybox:1.36", "index.docker.io/library/busybox:1.36@" + pd.String(), false},
		{"docker.io/library/busybox:1", "index.docker.io/library/busybox:1@" + pd.String(), false},
		{"busybox@" + d, "index.docker.io/library/busybox@" + pd.String(), true},
		{"localhost:5000/base:1@" + d, "localhost:5000/base:1@" + pd.String(), true},
		{"localhost:5000/a/b", "localhost:5000/a/b:latest@" + pd.String(), false},
	}
	for _, tt := range tests {
		r, err := c.parse(tt.in)
		if err != nil {
			t.Errorf("parse(%q): %v", tt.in, err)
			continue
		}
		if got := r.pinned(pd); got != tt.pinned {
			t.Errorf("parse(%q).pinned = %q, want %q", tt.in, got, tt.pinned)
		}
		if (r.digest != "") != tt.digest {
			t.Errorf("parse(%q): digest %q", tt.in, r.digest)
		}
	}
	if r, _ := c.parse("localhost:5000/a:1"); r.repo.Scheme() != "http" {
		t.Errorf("localhost scheme %s", r.repo.Scheme())
	}
}

func TestPullParallelSharesDownloads(t *testing.T) {
	t.Parallel()
	host := registrytest.NewInProcess(t)
	img, err := random.Image(1<<16, 6)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	registrytest.Push(t, img, host+"/rand:1")
	blobs := newStore(t)
	c, cnt := newClient(t, blobs)
	ctx := context.Background()
	r, err := c.Resolve(ctx, host+"/rand:1", llb.Platform{})
	if err != nil {
		t.Fatal(err)
	}
	cnt.reset()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Pull(ctx, r)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := cnt.count("GET blobs"); n < 6 || n > 24 {
		t.Errorf("%d blob GETs for 6 layers", n)
	}
	assertStoreConsistent(t, blobs, 8)
}
