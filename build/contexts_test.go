package build

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	digest "github.com/opencontainers/go-digest"
)

func TestSplitLayoutRef(t *testing.T) {
	t.Parallel()
	d := "sha256:" + strings.Repeat("b", 64)
	tests := []struct {
		ref, dir, tag string
		dgst          digest.Digest
	}{
		{"oci-layout:///srv/l", "/srv/l", "", ""},
		{"oci-layout:///srv/l:v1", "/srv/l", "v1", ""},
		{"oci-layout://rel/l:latest", "rel/l", "latest", ""},
		{"oci-layout:///srv/l@" + d, "/srv/l", "", digest.Digest(d)},
		{"oci-layout:///srv/l:v1@" + d, "/srv/l", "v1", digest.Digest(d)},
		// A colon in a directory name is not a tag.
		{"oci-layout:///srv/a:b/l", "/srv/a:b/l", "", ""},
	}
	for _, tt := range tests {
		dir, tag, dg := splitLayoutRef(tt.ref)
		if dir != tt.dir || tag != tt.tag || dg != tt.dgst {
			t.Errorf("splitLayoutRef(%q) = %q, %q, %q; want %q, %q, %q", tt.ref, dir, tag, dg, tt.dir, tt.tag, tt.dgst)
		}
	}
}

// TestReadIgnoreFor checks that DOCKERFILE.dockerignore wins over the
// context's .dockerignore, as in BuildKit, and how messages name the file
// read: relative to the context when inside it, else as given.
func TestReadIgnoreFor(t *testing.T) {
	t.Parallel()
	ctxDir, dfDir := t.TempDir(), t.TempDir()
	df := filepath.Join(dfDir, "app.Dockerfile")
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what, dfPath, ctxDir, wantPats, wantName string) {
		t.Helper()
		got, name, err := readIgnoreFor(context.Background(), dfPath, ctxDir)
		if err != nil || strings.Join(got, "|") != wantPats || name != wantName {
			t.Errorf("%s: %q %q, %v; want %q %q", what, got, name, err, wantPats, wantName)
		}
	}
	write(filepath.Join(ctxDir, ".dockerignore"), "from-context\n")
	check("without app.Dockerfile.dockerignore", df, ctxDir, "from-context", ".dockerignore")
	write(df+".dockerignore", "from-dockerfile\n*.tmp\n")
	check("with app.Dockerfile.dockerignore outside the context", df, ctxDir, "from-dockerfile|*.tmp", df+".dockerignore")
	check("no Dockerfile path", "", ctxDir, "from-context", ".dockerignore")
	check("no ignore file at all", filepath.Join(dfDir, "Dockerfile"), t.TempDir(), "", "")

	inside := filepath.Join(ctxDir, "sub", "x.Dockerfile")
	write(inside+".dockerignore", "from-sub\n")
	check("x.Dockerfile.dockerignore inside the context", inside, ctxDir, "from-sub", "sub/x.Dockerfile.dockerignore")
}

// fakeBackend is the next image source of layoutImages: it records what
// reaches it.
type fakeBackend struct{ refs []string }

var errFakeBackend = errors.New("fake backend")

func (f *fakeBackend) Resolve(_ context.Context, ref string, _ llb.Platform) (*registry.Resolved, error) {
	f.refs = append(f.refs, "resolve "+ref)
	return nil, errFakeBackend
}

func (f *fakeBackend) Pull(_ context.Context, r *registry.Resolved) ([]cache.Layer, error) {
	f.refs = append(f.refs, "pull "+r.Pinned)
	return nil, errFakeBackend
}

func (f *fakeBackend) ResolveImageConfig(_ context.Context, ref string, _ llb.Platform) (string, string, []byte, error) {
	f.refs = append(f.refs, "config "+ref)
	return "", "", nil, errFakeBackend
}

// TestLayoutImages resolves and pulls images of an OCI layout by tag and
// by digest, and passes other references on.
func TestLayoutImages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	img1, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	img2, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	tag := func(s string) layout.Option {
		return layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": s})
	}
	if err := lp.AppendImage(img1, tag("v1")); err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img2, tag("v2")); err != nil {
		t.Fatal(err)
	}
	d1, _ := img1.Digest()
	d2, _ := img2.Digest()

	blobs, err := cache.OpenBlobStore(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	next := &fakeBackend{}
	li := newLayoutImages(next, blobs)
	host := llb.Platform{OS: "linux", Architecture: "amd64"}

	check := func(ref string, want v1.Image, wantDigest v1.Hash, wantPinned string) {
		t.Helper()
		r, err := li.Resolve(ctx, ref, host)
		if err != nil {
			t.Fatalf("Resolve(%s): %v", ref, err)
		}
		if r.Pinned != wantPinned || r.ManifestDigest.String() != wantDigest.String() {
			t.Errorf("Resolve(%s) = %s %s, want %s %s", ref, r.Pinned, r.ManifestDigest, wantPinned, wantDigest)
		}
		rawCfg, _ := want.RawConfigFile()
		if !bytes.Equal(r.Config, rawCfg) {
			t.Errorf("Resolve(%s): config differs from the image's", ref)
		}
		pinned, _, cfg, err := li.ResolveImageConfig(ctx, ref, host)
		if err != nil || pinned != wantPinned || !bytes.Equal(cfg, rawCfg) {
			t.Errorf("ResolveImageConfig(%s) = %s, %v", ref, pinned, err)
		}
		layers, err := li.Pull(ctx, r)
		if err != nil {
			t.Fatalf("Pull(%s): %v", wantPinned, err)
		}
		wl, _ := want.Layers()
		if len(layers) != len(wl) {
			t.Fatalf("Pull(%s) = %d layers, want %d", wantPinned, len(layers), len(wl))
		}
		for i, l := range layers {
			d, _ := wl[i].Digest()
			id, _ := wl[i].DiffID()
			if l.Digest.String() != d.String() || l.DiffID.String() != id.String() {
				t.Errorf("layer %d = %s/%s, want %s/%s", i, l.Digest, l.DiffID, d, id)
			}
			if size, err := blobs.Stat(l.Digest); err != nil || size != l.Size {
				t.Errorf("layer %d in the blob store: size %d, %v; want %d", i, size, err, l.Size)
			}
		}
	}
	base := "oci-layout://" + dir
	check(base+":v1", img1, d1, base+":v1@"+d1.String())
	check(base+":v2", img2, d2, base+":v2@"+d2.String())
	check(base+"@"+d2.String(), img2, d2, base+"@"+d2.String())
	// A second pull finds the blobs already stored.
	check(base+":v1", img1, d1, base+":v1@"+d1.String())

	for _, bad := range []struct{ ref, err string }{
		{base + ":v3", `no image for tag "v3"`},
		{base + "@sha256:" + strings.Repeat("0", 64), "no image for tag"},
		{"oci-layout://" + filepath.Join(dir, "missing") + ":v1", "oci layout " + filepath.Join(dir, "missing")},
	} {
		if _, err := li.Resolve(ctx, bad.ref, host); err == nil || !strings.Contains(err.Error(), bad.err) {
			t.Errorf("Resolve(%s) error = %v, want one containing %q", bad.ref, err, bad.err)
		}
	}
	// A platform the layout's descriptor does not match.
	arm := llb.Platform{OS: "linux", Architecture: "arm64"}
	pl, err := layout.Write(t.TempDir(), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.AppendImage(img1, tag("x"), layout.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"})); err != nil {
		t.Fatal(err)
	}
	if _, err := li.Resolve(ctx, "oci-layout://"+string(pl)+":x", arm); err == nil {
		t.Errorf("an amd64-only layout resolved for %s", arm)
	}
	// A nested index is descended into by platform.
	nested := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: img1, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: img2, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	nl, err := layout.Write(t.TempDir(), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := nl.AppendIndex(nested, tag("multi")); err != nil {
		t.Fatal(err)
	}
	r, err := li.Resolve(ctx, "oci-layout://"+string(nl)+":multi", host)
	if err != nil {
		t.Fatalf("nested index: %v", err)
	}
	if r.ManifestDigest.String() != d2.String() {
		t.Errorf("nested index resolved %s for amd64, want %s", r.ManifestDigest, d2)
	}

	// Everything else goes to the next backend.
	if _, err := li.Resolve(ctx, "busybox:latest", host); !errors.Is(err, errFakeBackend) {
		t.Errorf("Resolve(busybox) error = %v, want the next backend's", err)
	}
	if _, _, _, err := li.ResolveImageConfig(ctx, "busybox:latest", host); !errors.Is(err, errFakeBackend) {
		t.Errorf("ResolveImageConfig(busybox) error = %v", err)
	}
	if _, err := li.Pull(ctx, &registry.Resolved{Pinned: "busybox:latest@" + d1.String()}); !errors.Is(err, errFakeBackend) {
		t.Errorf("Pull(busybox) error = %v", err)
	}
	want := "resolve busybox:latest|config busybox:latest|pull busybox:latest@" + d1.String()
	if got := strings.Join(next.refs, "|"); got != want {
		t.Errorf("next backend saw %q, want %q", got, want)
	}
}

// TestNamedContexts checks the conversion of named contexts: a directory
// becomes a local source with its own .dockerignore, images and layouts
// references; a context with none or two sources is an error.
func TestNamedContexts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("*.log\n!keep.log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	plain := t.TempDir()
	c, err := namedContexts(Request{ContextDir: "/ctx", Contexts: map[string]NamedContext{
		"Src":   {Dir: dir},
		"plain": {Dir: plain},
		"base":  {Image: "alpine:3.20"},
		"lay":   {Layout: "/srv/layout:v1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if src := c.named["src"]; src.Local != "context:src" || strings.Join(src.ExcludePatterns, "|") != "*.log|!keep.log" {
		t.Errorf("src = %+v, want the local context:src with the directory's .dockerignore", src)
	}
	if p := c.named["plain"]; p.Local != "context:plain" || len(p.ExcludePatterns) != 0 {
		t.Errorf("plain = %+v, want a local with no excludes", p)
	}
	if b := c.named["base"]; b.Image != "alpine:3.20" || b.Local != "" {
		t.Errorf("base = %+v", b)
	}
	if l := c.named["lay"]; l.Image != "oci-layout:///srv/layout:v1" {
		t.Errorf("lay = %+v, want the oci-layout reference", l)
	}
	if c.locals["context"].Path != "/ctx" || c.locals["context:src"].Path != dir || c.locals["context:plain"].Path != plain || len(c.locals) != 3 {
		t.Errorf("locals = %v, want the main context and both directories", c.locals)
	}
	for _, bad := range []NamedContext{{}, {Dir: dir, Image: "x"}, {Dir: filepath.Join(dir, "missing")}} {
		if _, err := namedContexts(Request{Contexts: map[string]NamedContext{"x": bad}}); err == nil {
			t.Errorf("namedContexts(%+v) succeeded", bad)
		}
	}
}

// TestReadDockerfile reads the Dockerfile with its ignore patterns and
// refuses one over the size bound.
func TestReadDockerfile(t *testing.T) {
	t.Parallel()
	ctxDir := t.TempDir()
	df := filepath.Join(ctxDir, "app.Dockerfile")
	os.WriteFile(df, []byte("FROM scratch\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, ".dockerignore"), []byte("*.tmp\n"), 0o644)
	req := Request{ContextDir: ctxDir}
	if err := ReadDockerfile(context.Background(), &req, df); err != nil {
		t.Fatal(err)
	}
	if string(req.Dockerfile) != "FROM scratch\n" || req.DockerfileName != "app.Dockerfile" || strings.Join(req.Excludes, "|") != "*.tmp" {
		t.Errorf("request %q %q %q", req.Dockerfile, req.DockerfileName, req.Excludes)
	}
	big := filepath.Join(ctxDir, "big")
	os.WriteFile(big, make([]byte, MaxDockerfileSize+1), 0o644)
	if err := ReadDockerfile(context.Background(), &req, big); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("an oversized Dockerfile: %v", err)
	}
	if err := ReadDockerfile(context.Background(), &req, filepath.Join(ctxDir, "missing")); err == nil || !strings.Contains(err.Error(), "failed to read dockerfile") {
		t.Errorf("a missing Dockerfile: %v", err)
	}
}
