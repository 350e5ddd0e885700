package main

// Ports of BuildKit's frontend/dockerfile/dockerfile_namedcontext_test.go
// that need images of their own (pushed to the in-process registry or
// written to an OCI layout), so they cannot be golden cases.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/registrytest"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// namedEnv is the in-process registry with the test busybox and an
// "alpine": the busybox with /etc/alpine-release, which tells the two
// apart as in BuildKit's tests.
type namedEnv struct {
	*goldenEnv
	host   string
	alpine v1.Image
}

func newNamedEnv(t *testing.T) *namedEnv {
	t.Helper()
	env := newGoldenEnv(t)
	data := makeTar(t, []tarEntry{
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/alpine-release", typ: tar.TypeReg, body: "3.20.0\n"},
	})
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	alpine, err := mutate.AppendLayers(env.base, l)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.SplitN(env.baseArgs["BASE"], "/", 2)[0]
	registrytest.Push(t, alpine, host+"/alpine:latest")
	return &namedEnv{goldenEnv: env, host: host, alpine: alpine}
}

// build builds df (with the context files ctx) and returns the progress;
// o's ContextDir, Root and Progress are filled in.
func (e *namedEnv) build(t *testing.T, df string, ctx map[string]string, o BuildOptions) (string, error) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, ctx)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	o.ContextDir, o.Progress = dir, "plain"
	if o.Root == "" {
		o.Root = t.TempDir()
	}
	if o.BuildArgs == nil {
		o.BuildArgs = e.baseArgs
	}
	var progress bytes.Buffer
	ctxt, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := Build(ctxt, o, &progress)
	return progress.String(), err
}

// push builds df and pushes the image as ref.
func (e *namedEnv) push(t *testing.T, df, ref string, contexts ...string) v1.Image {
	t.Helper()
	o := BuildOptions{Tags: []string{ref}, Push: true, BuildContexts: contexts,
		Outputs: []Output{{Type: "image", Attrs: map[string]string{"push": "true"}}}}
	if progress, err := e.build(t, df, nil, o); err != nil {
		t.Fatalf("building %s: %v\nprogress:\n%s", ref, err, progress)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("reading back %s: %v", ref, err)
	}
	return img
}

// files builds df and returns the files of the image.
func (e *namedEnv) files(t *testing.T, df string, ctx map[string]string, contexts ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, ctx)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	img, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: dir, Root: t.TempDir(), BuildArgs: e.baseArgs, BuildContexts: contexts})
	if err != nil {
		t.Fatalf("build: %v\nprogress:\n%s", err, progress)
	}
	return imageFiles(t, img)
}

// TestBuildKitNamedImageContext ports testNamedImageContext: a stage's
// image replaced by docker-image:// (a name without tag or digest), the
// replacing image's env applied to RUN, and a stage based on another stage
// replaced as a whole.
func TestBuildKitNamedImageContext(t *testing.T) {
	requireRootOverlay(t)
	e := newNamedEnv(t)
	files := e.files(t, `FROM busybox AS base
RUN cat /etc/alpine-release > /out
FROM scratch
COPY --from=base /out /
`, nil, "busybox=docker-image://"+e.host+"/alpine")
	if files["out"] == "" {
		t.Errorf("/out is empty: the named context did not replace busybox")
	}

	target := e.host + "/buildkit/testnamedimagecontext:latest"
	e.push(t, "FROM "+e.host+"/alpine:latest\nENV PATH=/foobar:$PATH\nENV FOOBAR=foobar\n", target)
	files = e.files(t, `FROM busybox AS base
RUN cat /etc/alpine-release > /out
RUN env | grep PATH > /env_path
RUN env | grep FOOBAR > /env_foobar
FROM scratch
COPY --from=base /out /
COPY --from=base /env_path /
COPY --from=base /env_foobar /
`, nil, "busybox=docker-image://"+target)
	if files["out"] == "" {
		t.Errorf("/out is empty")
	}
	if got := strings.TrimSpace(files["env_foobar"]); got != "FOOBAR=foobar" {
		t.Errorf("env_foobar = %q", got)
	}
	if !strings.Contains(files["env_path"], "/foobar:") {
		t.Errorf("env_path = %q, want the image's PATH", files["env_path"])
	}

	// moby/buildkit#5578: replacing a stage that is based on another stage.
	e.files(t, `FROM busybox AS parent
FROM parent AS base
RUN echo base > /out
FROM base
RUN [ -f /etc/alpine-release ]
RUN [ ! -f /out ]
`, nil, "base=docker-image://"+target)
}

// TestBuildKitNamedImageContextPlatform ports testNamedImageContextPlatform:
// a named context that is an index is resolved for the stage's
// --platform=$BUILDPLATFORM, not for the target platform.
func TestBuildKitNamedImageContextPlatform(t *testing.T) {
	requireRootOverlay(t)
	e := newNamedEnv(t)
	// What BUILDKIT_MULTI_PLATFORM=true pushes: an index of one image.
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: e.alpine, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	target := e.host + "/buildkit/testnamedimagecontextplatform:latest"
	registrytest.PushIndex(t, idx, target)
	progress, err := e.build(t, "FROM --platform=$BUILDPLATFORM busybox AS target\nRUN echo hello\n", nil, BuildOptions{
		Platform: "darwin/ppc64le", BuildContexts: []string{"busybox=docker-image://" + target},
		Outputs: []Output{{Type: "oci", Dest: filepath.Join(t.TempDir(), "out.tar"), Attrs: map[string]string{}}},
	})
	if err != nil {
		t.Fatalf("build: %v\nprogress:\n%s", err, progress)
	}
}

// TestBuildKitNamedImageContextTimestamps ports
// testNamedImageContextTimestamps: an image built on a named context gets
// its own creation time, a little after the context image's.
func TestBuildKitNamedImageContextTimestamps(t *testing.T) {
	requireRootOverlay(t)
	e := newNamedEnv(t)
	const df = "FROM alpine\nRUN echo foo >> /test\n"
	target := e.host + "/buildkit/testnamedimagecontexttimestamps:latest"
	img := e.push(t, df, target, "alpine=docker-image://"+e.host+"/alpine:latest")
	// Creation times have a resolution of a second.
	time.Sleep(1100 * time.Millisecond)
	derived := e.push(t, df, e.host+"/buildkit/testnamedimagecontexttimestampsderived:latest", "alpine=docker-image://"+target)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	dcf, err := derived.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	diff := dcf.Created.Sub(cf.Created.Time)
	if diff <= 0 || diff >= 10*time.Minute {
		t.Errorf("derived image created %v, base %v: want a little later", dcf.Created, cf.Created)
	}
}

// ociLayoutOf builds df to an OCI tar, extracts it to a directory and
// returns the directory and the digest of its only manifest.
func (e *namedEnv) ociLayoutOf(t *testing.T, df string, contexts ...string) (string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.tar")
	progress, err := e.build(t, df, nil, BuildOptions{BuildContexts: contexts,
		Outputs: []Output{{Type: "oci", Dest: out, Attrs: map[string]string{}}}})
	if err != nil {
		t.Fatalf("build: %v\nprogress:\n%s", err, progress)
	}
	dir := t.TempDir()
	writeFiles(t, dir, tarFiles(t, out))
	var index v1.IndexManifest
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil || json.Unmarshal(data, &index) != nil {
		t.Fatalf("index.json: %v %s", err, data)
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json has %d manifests, want 1", len(index.Manifests))
	}
	return dir, index.Manifests[0].Digest.String()
}

// TestBuildKitNamedOCILayoutContext ports testNamedOCILayoutContext: two
// stages replaced by an image of an OCI layout, by digest; the layout
// image's files and env are what the build sees.
func TestBuildKitNamedOCILayoutContext(t *testing.T) {
	requireRootOverlay(t)
	e := newNamedEnv(t)
	dir, dgst := e.ociLayoutOf(t, `ARG BASE
FROM $BASE
WORKDIR /test
RUN sh -c "echo -n first > out"
RUN sh -c "echo -n second > out2"
ENV foo=bar
`)
	ref := "oci-layout://" + dir + "@" + dgst
	files := e.files(t, `FROM busybox AS base
RUN cat /etc/alpine-release > out
FROM foo AS imported
RUN echo -n $foo > outfoo
FROM scratch
COPY --from=base /test/o* /
COPY --from=imported /test/outfoo /
`, nil, "base="+ref, "foo="+ref)
	for name, want := range map[string]string{"out": "first", "out2": "second", "outfoo": "bar"} {
		if files[name] != want {
			t.Errorf("/%s = %q, want %q", name, files[name], want)
		}
	}
}

// TestBuildKitNamedOCILayoutContextExport ports
// testNamedOCILayoutContextExport: an image built from nothing but an OCI
// layout context keeps the layout image's config.
func TestBuildKitNamedOCILayoutContextExport(t *testing.T) {
	requireRootOverlay(t)
	e := newNamedEnv(t)
	dir, dgst := e.ociLayoutOf(t, "FROM scratch\nWORKDIR /test\nENV foo=bar\n")
	out, outDigest := e.ociLayoutOf(t, "FROM nonexistent AS base\n", "nonexistent=oci-layout://"+dir+"@"+dgst)
	lp, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := lp.Image(v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(outDigest, "sha256:")})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.WorkingDir != "/test" || !slices.Contains(cf.Config.Env, "foo=bar") {
		t.Errorf("config: WorkingDir %q Env %v, want /test and foo=bar", cf.Config.WorkingDir, cf.Config.Env)
	}
}
