package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/registrytest"
	"github.com/builderdev/builder/internal/remotecache"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// cacheDockerfile has steps on the base and a second stage copied from,
// so that mode=max has more to export than mode=min.
const cacheDockerfile = `ARG BASE=busybox
FROM $BASE AS tool
RUN echo tool > /tool.txt

FROM $BASE
COPY a.txt /a.txt
RUN cat /a.txt > /b.txt && echo ran > /ran.txt
COPY c.txt /c.txt
RUN cat /c.txt >> /b.txt
COPY --from=tool /tool.txt /tool.txt
ENV X=1
`

// testRegistry is the registry of the remote cache tests: CI's
// (BUILDER_TEST_REGISTRY), else a distribution registry started for the
// test (skipped when not installed).
func testRegistry(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("BUILDER_TEST_REGISTRY"); h != "" {
		return h
	}
	return registrytest.StartDistribution(t)
}

// uniqueRepo is a repository name no other test run uses.
func uniqueRepo(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

type cacheEnv struct {
	host string
	base string
}

func newCacheEnv(t *testing.T) *cacheEnv {
	t.Helper()
	requireRootOverlay(t)
	host := testRegistry(t)
	base := host + "/" + uniqueRepo("i8-busybox") + ":latest"
	img, err := registrytest.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	registrytest.Push(t, img, base)
	return &cacheEnv{host: host, base: base}
}

// writeContext writes the test's context into a new directory (each call
// a different path) with c.txt holding c.
func writeContext(t *testing.T, c string) string {
	t.Helper()
	return writeContextWith(t, cacheDockerfile, c)
}

func writeContextWith(t *testing.T, dockerfile, c string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), uniqueRepo("ctx"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"Dockerfile": dockerfile, "a.txt": "a\n", "c.txt": c} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type cacheBuild struct {
	progress string
	digest   string
	err      error
}

// build builds ctxDir with state in root and the given cache flags,
// exporting an OCI tarball (and pushing to push when set).
func (e *cacheEnv) build(t *testing.T, ctxDir, root string, cf cacheFlags, push string) cacheBuild {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.tar")
	o := BuildOptions{
		ContextDir: ctxDir,
		BuildArgs:  map[string]string{"BASE": e.base},
		Progress:   "plain",
		Root:       root,
		Cache:      cf,
		Outputs:    []Output{{Type: "oci", Dest: out, Attrs: map[string]string{}}},
	}
	if push != "" {
		o.Outputs = []Output{{Type: "image", Attrs: map[string]string{"push": "true", "name": push}}}
	}
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := Build(ctx, o, &progress)
	r := cacheBuild{progress: progress.String(), err: err}
	if err != nil || push != "" {
		return r
	}
	img, err := readOCITar(t, out)
	if err != nil {
		r.err = err
		return r
	}
	r.digest = imageDigest(t, img)
	return r
}

func mustBuild(t *testing.T, what string, r cacheBuild) cacheBuild {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: %v\nprogress:\n%s", what, r.err, r.progress)
	}
	return r
}

// fetchRaw returns the manifest ref names and the cache config it points
// to.
func fetchCache(t *testing.T, ref string) (manifest, config []byte) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatalf("fetching %s: %v", ref, err)
	}
	var probe struct {
		Config    *v1.Descriptor  `json:"config"`
		Manifests []v1.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(desc.Manifest, &probe); err != nil {
		t.Fatal(err)
	}
	cd := probe.Config
	for i := range probe.Manifests {
		if probe.Manifests[i].MediaType == remotecache.ConfigMediaType {
			cd = &probe.Manifests[i]
		}
	}
	if cd == nil || cd.MediaType != remotecache.ConfigMediaType {
		t.Fatalf("%s: no cache config in %s", ref, desc.Manifest)
	}
	l, err := remote.Layer(r.Context().Digest(cd.Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return desc.Manifest, cfg
}

func stepsNotCached(progress string) []string {
	var out []string
	for name, st := range stepStates(progress) {
		if st != "CACHED" {
			out = append(out, name+": "+st)
		}
	}
	return out
}

// TestRemoteCacheRegistry: machine A builds and exports its cache to a
// registry; machine B (empty root, the context in another directory)
// builds from it with every step cached and gets A's image digest, and
// exports a byte-identical cache; an unchanged rebuild on A writes
// nothing; a changed file re-runs only what reads it and says why.
func TestRemoteCacheRegistry(t *testing.T) {
	env := newCacheEnv(t)
	for _, form := range []string{"image-manifest=true", "image-manifest=false", "image-manifest=true,oci-mediatypes=false"} {
		t.Run(form, func(t *testing.T) {
			ref := env.host + "/" + uniqueRepo("i8-cache") + ":cache"
			rootA := filepath.Join(t.TempDir(), "rootA")
			a := mustBuild(t, "machine A", env.build(t, writeContext(t, "c\n"), rootA, cacheFlags{to: []string{"type=registry,mode=max,ref=" + ref + "," + form}}, ""))
			m1, cfg1 := fetchCache(t, ref)
			for _, bad := range []string{rootA, os.TempDir(), "/tmp/", mustHostname(t)} {
				if bytes.Contains(cfg1, []byte(bad)) {
					t.Errorf("cache config contains %q:\n%s", bad, cfg1)
				}
			}

			rootB := filepath.Join(t.TempDir(), "rootB")
			ref2 := env.host + "/" + uniqueRepo("i8-cache") + ":cache"
			b := mustBuild(t, "machine B", env.build(t, writeContext(t, "c\n"), rootB,
				cacheFlags{from: []string{"type=registry,ref=" + ref}, to: []string{"type=registry,mode=max,ref=" + ref2 + "," + form}}, ""))
			if nc := stepsNotCached(b.progress); len(nc) > 0 {
				t.Errorf("machine B: steps not cached: %v\nprogress:\n%s", nc, b.progress)
			}
			if b.digest != a.digest {
				t.Errorf("machine B built %s, machine A %s", b.digest, a.digest)
			}
			// Same keys on both machines: B's cache is A's, byte for byte.
			m2, cfg2 := fetchCache(t, ref2)
			if !bytes.Equal(cfg1, cfg2) || !bytes.Equal(m1, m2) {
				t.Errorf("machine B exported another cache:\nA: %s\nB: %s", cfg1, cfg2)
			}

			// Unchanged on A: the same manifest, nothing written.
			again := mustBuild(t, "machine A again", env.build(t, writeContext(t, "c\n"), rootA, cacheFlags{to: []string{"type=registry,mode=max,ref=" + ref + "," + form}}, ""))
			if m3, _ := fetchCache(t, ref); !bytes.Equal(m1, m3) {
				t.Errorf("unchanged rebuild exported another manifest:\n%s\n%s", m1, m3)
			}
			if !strings.Contains(again.progress, "unchanged, nothing written") {
				t.Errorf("unchanged rebuild: progress does not say the cache is unchanged:\n%s", again.progress)
			}
			if again.digest != a.digest {
				t.Errorf("cached rebuild on A: digest %s, want %s", again.digest, a.digest)
			}

			// One file changed on a fresh machine C: the steps before it
			// come from the cache, the COPY says why it runs.
			rootC := filepath.Join(t.TempDir(), "rootC")
			c := mustBuild(t, "machine C", env.build(t, writeContext(t, "changed\n"), rootC, cacheFlags{from: []string{ref}}, ""))
			// The steps C ran are kept with the imported results they
			// were built on: C rebuilds without the remote cache.
			c2 := mustBuild(t, "machine C again, no --cache-from", env.build(t, writeContext(t, "changed\n"), rootC, cacheFlags{}, ""))
			if nc := stepsNotCached(c2.progress); len(nc) > 0 || c2.digest != c.digest {
				t.Errorf("machine C rebuild: not cached %v, digest %s want %s\n%s", nc, c2.digest, c.digest, c2.progress)
			}
			states := stepStates(c.progress)
			for n, st := range states {
				want := "CACHED"
				if strings.Contains(n, "c.txt") || strings.Contains(n, "RUN cat /c.txt") {
					want = "DONE"
				}
				if strings.Contains(n, "COPY --from=tool") {
					continue // copies onto the changed step: runs
				}
				if st != want {
					t.Errorf("machine C: %q is %s, want %s\nprogress:\n%s", n, st, want, c.progress)
				}
			}
			if !strings.Contains(c.progress, "cache miss: content of input 1") {
				t.Errorf("machine C: the changed COPY does not say which input changed:\n%s", c.progress)
			}
		})
	}
}

func mustHostname(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil || len(h) < 4 {
		return "\x00no-hostname"
	}
	return h
}

// TestRemoteCacheLocal: type=local writes an OCI layout directory a fresh
// root builds from, to the same digest.
func TestRemoteCacheLocal(t *testing.T) {
	env := newCacheEnv(t)
	dir := filepath.Join(t.TempDir(), "cachedir")
	a := mustBuild(t, "export", env.build(t, writeContext(t, "c\n"), filepath.Join(t.TempDir(), "a"), cacheFlags{to: []string{"type=local,mode=min,dest=" + dir}}, ""))
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		t.Fatal(err)
	}
	b := mustBuild(t, "import", env.build(t, writeContext(t, "c\n"), filepath.Join(t.TempDir(), "b"), cacheFlags{from: []string{"type=local,src=" + dir}}, ""))
	if b.digest != a.digest {
		t.Errorf("built %s from the local cache, want %s", b.digest, a.digest)
	}
	if nc := stepsNotCached(b.progress); len(nc) > 0 {
		t.Errorf("steps not cached: %v\n%s", nc, b.progress)
	}
	// mode=min: the records of the final image's steps, not the tool
	// stage's.
	cfg := localCacheConfig(t, dir)
	for _, r := range cfg.Records {
		if r.Info != nil && strings.Contains(r.Info.Name, "[tool") {
			t.Errorf("mode=min exported %q", r.Info.Name)
		}
	}
	if len(cfg.Records) != 6 {
		t.Errorf("mode=min exported %d records, want the 6 of the final stage", len(cfg.Records))
	}
}

// localCacheConfig reads the cache config of the cache tagged latest in
// the OCI layout dir.
func localCacheConfig(t *testing.T, dir string) remotecache.Config {
	t.Helper()
	blob := func(d v1.Hash) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "blobs", d.Algorithm, d.Hex))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var idx v1.IndexManifest
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, raw)
	}
	var probe struct {
		Manifests []v1.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(blob(idx.Manifests[0].Digest), &probe); err != nil {
		t.Fatal(err)
	}
	var cfg remotecache.Config
	for _, d := range probe.Manifests {
		if d.MediaType == remotecache.ConfigMediaType {
			c, err := remotecache.DecodeConfig(blob(d.Digest))
			if err != nil {
				t.Fatal(err)
			}
			cfg = *c
		}
	}
	return cfg
}

// TestRemoteCacheMissingOrBroken: a cache that does not exist is one line
// and the build goes on; a foreign or broken one is a warning, never an
// error, and leaves the root usable.
func TestRemoteCacheMissingOrBroken(t *testing.T) {
	env := newCacheEnv(t)
	root := filepath.Join(t.TempDir(), "root")
	missing := env.host + "/" + uniqueRepo("i8-missing") + ":cache"
	r := mustBuild(t, "missing cache", env.build(t, writeContext(t, "c\n"), root, cacheFlags{from: []string{missing}}, ""))
	if n := strings.Count(r.progress, "not found"); n != 1 {
		t.Errorf("missing cache: %d lines say not found, want 1:\n%s", n, r.progress)
	}

	// A foreign artifact: an image without inline cache.
	r = mustBuild(t, "foreign cache", env.build(t, writeContext(t, "c\n"), root, cacheFlags{from: []string{env.base}}, ""))
	if !strings.Contains(r.progress, "ignoring cache") {
		t.Errorf("foreign cache: no warning:\n%s", r.progress)
	}

	// A broken cache: our config type, garbage inside.
	broken := env.host + "/" + uniqueRepo("i8-broken") + ":cache"
	pushBrokenCache(t, broken, []byte(`{"version":1,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:zz"}],"records":[{"key":"x"}]}`))
	r = mustBuild(t, "broken cache", env.build(t, writeContext(t, "c\n"), root, cacheFlags{from: []string{broken}}, ""))
	if !strings.Contains(r.progress, "ignoring cache") {
		t.Errorf("broken cache: no warning:\n%s", r.progress)
	}
	// The root still builds, from its own cache.
	r = mustBuild(t, "after", env.build(t, writeContext(t, "c\n"), root, cacheFlags{}, ""))
	if nc := stepsNotCached(r.progress); len(nc) > 0 {
		t.Errorf("root after the broken cache: not cached %v", nc)
	}
}

func pushBrokenCache(t *testing.T, ref string, cfg []byte) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, _, _ := v1.SHA256(bytes.NewReader(cfg))
	if err := remote.WriteLayer(r.Context(), static.NewLayer(cfg, remotecache.ConfigMediaType)); err != nil {
		t.Fatal(err)
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.manifest.v1+json",
		Config: v1.Descriptor{MediaType: remotecache.ConfigMediaType, Digest: d, Size: int64(len(cfg))}, Layers: []v1.Descriptor{}}
	raw, _ := json.Marshal(m)
	req, _ := http.NewRequest(http.MethodPut, "http://"+r.Context().RegistryStr()+"/v2/"+r.Context().RepositoryStr()+"/manifests/"+r.Identifier(), bytes.NewReader(raw))
	req.Header.Set("Content-Type", string(m.MediaType))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("pushing broken cache manifest: %s", resp.Status)
	}
}

// countingProxy is a reverse proxy to a registry that records the blobs
// downloaded (GET .../blobs/<digest>) and their bytes.
type countingProxy struct {
	host string
	mu   sync.Mutex
	gets map[string]int64
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	p := &countingProxy{gets: map[string]int64{}}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			cw := &countWriter{ResponseWriter: w}
			rp.ServeHTTP(cw, r)
			p.mu.Lock()
			p.gets[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]] += cw.n
			p.mu.Unlock()
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

func (p *countingProxy) reset() {
	p.mu.Lock()
	p.gets = map[string]int64{}
	p.mu.Unlock()
}

func (p *countingProxy) downloaded() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int64{}
	for k, v := range p.gets {
		out[k] = v
	}
	return out
}

type countWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// TestRemoteCacheLazyPush: a fresh root whose every step is a remote hit
// pushes the image to the cache's registry without downloading a layer:
// only the cache config (and the base image's config for the frontend)
// are fetched; the layers are mounted.
func TestRemoteCacheLazyPush(t *testing.T) {
	env := newCacheEnv(t)
	// Both machines see the registry through the proxy (the base image's
	// name is part of the keys); only B's downloads are counted.
	proxy := newCountingProxy(t, env.host)
	viaProxy := func(s string) string { return strings.Replace(s, env.host, proxy.host, 1) }
	envP := &cacheEnv{host: proxy.host, base: viaProxy(env.base)}
	ref := proxy.host + "/" + uniqueRepo("i8-lazy") + ":cache"
	mustBuild(t, "machine A", envP.build(t, writeContext(t, "c\n"), filepath.Join(t.TempDir(), "a"), cacheFlags{to: []string{"type=registry,mode=max,ref=" + ref}}, ""))
	proxy.reset()

	dst := proxy.host + "/" + uniqueRepo("i8-app") + ":v1"
	rootB := filepath.Join(t.TempDir(), "b")
	b := mustBuild(t, "machine B push", envP.build(t, writeContext(t, "c\n"), rootB, cacheFlags{from: []string{ref}}, dst))
	if nc := stepsNotCached(b.progress); len(nc) > 0 {
		t.Errorf("steps not cached: %v\n%s", nc, b.progress)
	}
	_, cfg := fetchCache(t, ref)
	var cc remotecache.Config
	if err := json.Unmarshal(cfg, &cc); err != nil {
		t.Fatal(err)
	}
	layers := map[string]bool{}
	for _, l := range cc.Layers {
		layers[l.Digest.String()] = true
	}
	got := proxy.downloaded()
	for d, n := range got {
		if layers[d] {
			t.Errorf("layer %s (%d bytes) was downloaded", d, n)
		}
	}
	if len(got) > 2 {
		t.Errorf("downloaded %d blobs, want at most the cache config and the base config: %v", len(got), got)
	}
	// Only the image config (made here) is uploaded.
	if !strings.Contains(b.progress, "blobs: 1 uploaded, 6 mounted or already there") {
		t.Errorf("the push does not report its mounts:\n%s", b.progress)
	}
	if !strings.Contains(b.progress, "downloaded 0 blobs") {
		t.Errorf("progress does not report the lazy import:\n%s", b.progress)
	}
	// The local store has the image too: its layers are fetched when a
	// command reads them.
	out := filepath.Join(t.TempDir(), "saved.tar")
	if msg, err := runCLI(t, "save", "--root", rootB, "-o", out, dst); err != nil {
		t.Errorf("saving the lazily stored image: %v\n%s", err, msg)
	} else if img, err := crane.Load(out); err != nil {
		t.Errorf("saved image: %v", err)
	} else if err := validate.Image(img); err != nil {
		t.Errorf("saved image: %v", err)
	}
	// The pushed image is whole.
	r, _ := name.ParseReference(dst, name.Insecure)
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	for _, l := range ls {
		if _, err := l.Size(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRemoteCacheShowProgress(t *testing.T) {
	if os.Getenv("I8_SHOW") == "" {
		t.Skip()
	}
	env := newCacheEnv(t)
	ref := env.host + "/" + uniqueRepo("i8-cache") + ":cache"
	a := mustBuild(t, "A", env.build(t, writeContext(t, "c\n"), filepath.Join(t.TempDir(), "a"), cacheFlags{to: []string{"type=registry,mode=max,ref=" + ref}}, ""))
	t.Log(a.progress)
	_, cfg := fetchCache(t, ref)
	t.Logf("%s", cfg)
	b := mustBuild(t, "B", env.build(t, writeContext(t, "c2\n"), filepath.Join(t.TempDir(), "b"), cacheFlags{from: []string{ref}}, ""))
	t.Log(b.progress)
}

// TestRemoteCacheMounts: cache-mounts=true exports the content of a RUN
// --mount=type=cache; a fresh root whose RUN does execute finds it warm.
func TestRemoteCacheMounts(t *testing.T) {
	env := newCacheEnv(t)
	const df = `ARG BASE=busybox
FROM $BASE
COPY c.txt /c.txt
RUN --mount=type=cache,id=c1,target=/cache sh -c 'if [ -f /cache/f ]; then echo WARM-$(cat /cache/f); else echo COLD; fi; cat /c.txt > /cache/f'
`
	ref := env.host + "/" + uniqueRepo("i8-mounts") + ":cache"
	a := mustBuild(t, "machine A", env.build(t, writeContextWith(t, df, "one\n"), filepath.Join(t.TempDir(), "a"),
		cacheFlags{to: []string{"type=registry,mode=max,cache-mounts=true,ref=" + ref}}, ""))
	if !strings.Contains(a.progress, "COLD") || !strings.Contains(a.progress, "cache mount c1: ") {
		t.Fatalf("machine A: cold run or mount export not shown:\n%s", a.progress)
	}
	_, cfg := fetchCache(t, ref)
	var cc remotecache.Config
	if err := json.Unmarshal(cfg, &cc); err != nil {
		t.Fatal(err)
	}
	if len(cc.Mounts) != 1 || cc.Mounts[0].ID != "c1" {
		t.Fatalf("cache config mounts %+v, want c1", cc.Mounts)
	}
	b := mustBuild(t, "machine B", env.build(t, writeContextWith(t, df, "two\n"), filepath.Join(t.TempDir(), "b"),
		cacheFlags{from: []string{ref}}, ""))
	if !strings.Contains(b.progress, "WARM-one") {
		t.Errorf("machine B: the RUN did not find the cache mount warm:\n%s", b.progress)
	}
	if !strings.Contains(b.progress, "cache mount c1 restored") {
		t.Errorf("machine B: the restore is not reported:\n%s", b.progress)
	}
}

// TestRemoteCacheInline: --cache-to type=inline puts the cache into the
// pushed image's config; --cache-from IMAGE on a fresh root builds every
// step from it, to the same image.
func TestRemoteCacheInline(t *testing.T) {
	env := newCacheEnv(t)
	app := env.host + "/" + uniqueRepo("i8-inline") + ":v1"
	mustBuild(t, "machine A", env.build(t, writeContext(t, "c\n"), filepath.Join(t.TempDir(), "a"), cacheFlags{to: []string{"type=inline"}}, app))
	r, _ := name.ParseReference(app, name.Insecure)
	desc, err := remote.Head(r)
	if err != nil {
		t.Fatal(err)
	}
	b := mustBuild(t, "machine B", env.build(t, writeContext(t, "c\n"), filepath.Join(t.TempDir(), "b"), cacheFlags{from: []string{app}, to: []string{"type=inline"}}, ""))
	if nc := stepsNotCached(b.progress); len(nc) > 0 {
		t.Errorf("steps not cached: %v\n%s", nc, b.progress)
	}
	if b.digest != desc.Digest.String() {
		t.Errorf("machine B built %s from the inline cache, machine A pushed %s", b.digest, desc.Digest)
	}
}

// TestRemoteCacheCompressionAndErrors: compression=zstd exports zstd
// layers a fresh root builds from; an export that fails fails the build,
// unless ignore-error=true makes it a warning.
func TestRemoteCacheCompressionAndErrors(t *testing.T) {
	env := newCacheEnv(t)
	ref := env.host + "/" + uniqueRepo("i8-zstd") + ":cache"
	mustBuild(t, "zstd export", env.build(t, writeContext(t, "c\n"), filepath.Join(t.TempDir(), "a"), cacheFlags{to: []string{"type=registry,mode=max,compression=zstd,ref=" + ref}}, ""))
	_, raw := fetchCache(t, ref)
	var cc remotecache.Config
	if err := json.Unmarshal(raw, &cc); err != nil {
		t.Fatal(err)
	}
	zstd := 0
	for _, l := range cc.Layers {
		if l.MediaType == "application/vnd.oci.image.layer.v1.tar+zstd" {
			zstd++
		}
	}
	// The base image's layer stays as pulled (force-compression=true
	// would convert it too), the steps' are zstd.
	if zstd != len(cc.Layers)-1 {
		t.Errorf("%d of %d cache layers are zstd, want all but the base's", zstd, len(cc.Layers))
	}
	b := mustBuild(t, "import zstd", env.build(t, writeContext(t, "c\n"), filepath.Join(t.TempDir(), "b"), cacheFlags{from: []string{ref}}, ""))
	if nc := stepsNotCached(b.progress); len(nc) > 0 {
		t.Errorf("steps not cached: %v", nc)
	}

	// Nothing listens on port 1.
	bad := "type=registry,ref=127.0.0.1:1/nowhere:cache"
	r := env.build(t, writeContext(t, "c\n"), filepath.Join(t.TempDir(), "c"), cacheFlags{to: []string{bad}}, "")
	if r.err == nil || !strings.Contains(r.progress, "exporting cache to 127.0.0.1:1/nowhere:cache") {
		t.Errorf("a failed cache export: err %v, want the build to fail naming the cache\n%s", r.err, r.progress)
	}
	r = mustBuild(t, "ignore-error", env.build(t, writeContext(t, "c\n"), filepath.Join(t.TempDir(), "d"), cacheFlags{to: []string{bad + ",ignore-error=true"}}, ""))
	if !strings.Contains(r.progress, "failed (ignore-error=true)") {
		t.Errorf("ignore-error: no warning\n%s", r.progress)
	}
}
