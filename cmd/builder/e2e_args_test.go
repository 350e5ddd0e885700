package main

// End-to-end checks of build-arg semantics that need more than one build:
// proxy args outside the cache key, ONBUILD through the local image store,
// SOURCE_DATE_EPOCH with rewrite-timestamp=true for reproducible images.

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// buildDockerfile builds df (with an empty context) in root with opts
// applied, and returns the progress and the OCI tar written to out.
func (e *goldenEnv) buildDockerfile(t *testing.T, df, root string, mod func(*BuildOptions)) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	dfPath := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(dfPath, []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	ctxDir := filepath.Join(dir, "context")
	if err := os.Mkdir(ctxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.tar")
	o := BuildOptions{
		ContextDir: ctxDir,
		Dockerfile: dfPath,
		BuildArgs:  map[string]string{},
		Progress:   "plain",
		Outputs:    []Output{{Type: "oci", Dest: out, Attrs: map[string]string{}}},
		Root:       root,
	}
	for k, v := range e.baseArgs {
		o.BuildArgs[k] = v
	}
	if mod != nil {
		mod(&o)
	}
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := Build(ctx, o, &progress); err != nil {
		t.Fatalf("build: %v\nprogress:\n%s", err, progress.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return progress.String(), data
}

// ociImage reads the image of an OCI tar's bytes.
func ociImage(t *testing.T, data []byte) v1.Image {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := readOCITar(t, p)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// fileInImage returns the content and header of path in img's last layer
// that has it.
func fileInImage(t *testing.T, img v1.Image, name string) (string, *tar.Header) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var content string
	var found *tar.Header
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if hdr.Name == name {
				b, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				content, found = string(b), hdr
			}
		}
		rc.Close()
	}
	if found == nil {
		t.Fatalf("%s is not in the image", name)
	}
	return content, found
}

func historyText(t *testing.T, img v1.Image) string {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, h := range cf.History {
		b.WriteString(h.CreatedBy + "\n")
	}
	return b.String()
}

// TestProxyArgsCache: HTTP_PROXY given with --build-arg reaches RUN without
// an ARG, is not in the history, and a different value reuses the cache.
func TestProxyArgsCache(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	root := t.TempDir()
	const df = "ARG BASE\nFROM $BASE\nRUN echo \"$HTTP_PROXY|$http_proxy|$NO_PROXY\" > /proxy\n"
	withProxy := func(p string) func(*BuildOptions) {
		return func(o *BuildOptions) { o.BuildArgs["HTTP_PROXY"] = p; o.BuildArgs["no_proxy"] = "localhost" }
	}
	progress1, data1 := env.buildDockerfile(t, df, root, withProxy("http://proxy-a:3128"))
	img1 := ociImage(t, data1)
	if got, _ := fileInImage(t, img1, "proxy"); got != "http://proxy-a:3128|http://proxy-a:3128|localhost\n" {
		t.Errorf("RUN saw %q, want the proxy args in upper and lower case", got)
	}
	if h := historyText(t, img1); strings.Contains(strings.ToLower(h), "proxy-a") || strings.Contains(h, "no_proxy") {
		t.Errorf("proxy args in the history:\n%s", h)
	}
	for name, st := range stepStates(progress1) {
		if st != "DONE" {
			t.Errorf("first build: %s is %s", name, st)
		}
	}
	progress2, data2 := env.buildDockerfile(t, df, root, withProxy("http://proxy-b:3128"))
	steps := stepStates(progress2)
	if len(steps) != 1 {
		t.Fatalf("second build: steps %v\n%s", steps, progress2)
	}
	for name, st := range steps {
		if st != "CACHED" {
			t.Errorf("second build with another HTTP_PROXY: %s is %s, want CACHED\n%s", name, st, progress2)
		}
	}
	if got, _ := fileInImage(t, ociImage(t, data2), "proxy"); !strings.HasPrefix(got, "http://proxy-a:3128|") {
		t.Errorf("the cached layer should be the first build's, got %q", got)
	}
}

// TestOnBuildFromStore builds a base image with ONBUILD triggers into the
// local image store, then an image FROM it by name: the triggers run in the
// child and its config has no OnBuild.
func TestOnBuildFromStore(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	root := t.TempDir()
	const base = "ARG BASE\nFROM $BASE\nENV FROM_BASE=1\nONBUILD ARG GREETING=hi\nONBUILD RUN echo \"$GREETING $FROM_BASE\" > /triggered\nONBUILD ENV TRIGGERED=yes\n"
	_, data := env.buildDockerfile(t, base, root, func(o *BuildOptions) { o.Tags = []string{"example.test/onbuild-base:v1"} })
	cf, err := ociImage(t, data).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ARG GREETING=hi", "RUN echo \"$GREETING $FROM_BASE\" > /triggered", "ENV TRIGGERED=yes"}
	if strings.Join(cf.Config.OnBuild, "\n") != strings.Join(want, "\n") {
		t.Fatalf("base OnBuild = %q, want %q", cf.Config.OnBuild, want)
	}

	progress, data := env.buildDockerfile(t, "FROM example.test/onbuild-base:v1\nRUN echo child > /child\n", root, nil)
	img := ociImage(t, data)
	if got, _ := fileInImage(t, img, "triggered"); got != "hi 1\n" {
		t.Errorf("/triggered = %q, want the trigger's output %q\n%s", got, "hi 1\n", progress)
	}
	if got, _ := fileInImage(t, img, "child"); got != "child\n" {
		t.Errorf("/child = %q", got)
	}
	cf, err = img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.Config.OnBuild) != 0 {
		t.Errorf("child OnBuild = %q, want none", cf.Config.OnBuild)
	}
	if !strings.Contains(strings.Join(cf.Config.Env, " "), "TRIGGERED=yes") {
		t.Errorf("child Env = %q, want TRIGGERED=yes from the trigger", cf.Config.Env)
	}
	if h := historyText(t, img); !strings.Contains(h, "RUN |1 GREETING=hi /bin/sh -c echo \"$GREETING $FROM_BASE\" > /triggered # buildkit") {
		t.Errorf("history lacks the trigger's RUN:\n%s", h)
	}
}

// TestRewriteTimestampReproducible builds the same Dockerfile twice in two
// roots with the same SOURCE_DATE_EPOCH and rewrite-timestamp=true: the OCI
// tars are byte-identical, new files are clamped to the epoch and base
// layers are untouched. A plain export afterwards in the same root keeps
// the real times (its layers are not the rewritten ones). SOURCE_DATE_EPOCH
// is also an ARG the Dockerfile can read.
func TestRewriteTimestampReproducible(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	const epoch = 1700000000
	const df = "ARG BASE\nFROM $BASE\nARG SOURCE_DATE_EPOCH\nRUN echo \"epoch=$SOURCE_DATE_EPOCH\" > /stamp && date +%s%N > /now\n"
	rewrite := func(o *BuildOptions) {
		o.BuildArgs["SOURCE_DATE_EPOCH"] = "1700000000"
		o.Outputs[0].Attrs["rewrite-timestamp"] = "true"
	}
	root1 := t.TempDir()
	_, a := env.buildDockerfile(t, df, root1, rewrite)
	// Without /now (whose content differs on every run), a build in a
	// fresh root runs the RUN again at another time: only the rewrite makes
	// the two results equal. The sleep puts them in different seconds.
	same := strings.Replace(df, " && date +%s%N > /now", "", 1)
	_, b := env.buildDockerfile(t, same, t.TempDir(), rewrite)
	time.Sleep(1100 * time.Millisecond)
	_, c := env.buildDockerfile(t, same, t.TempDir(), rewrite)
	if !bytes.Equal(b, c) {
		t.Errorf("two builds with SOURCE_DATE_EPOCH and rewrite-timestamp=true differ (%d and %d bytes)", len(b), len(c))
	}

	img := ociImage(t, a)
	stamp, hdr := fileInImage(t, img, "stamp")
	if stamp != "epoch=1700000000\n" {
		t.Errorf("ARG SOURCE_DATE_EPOCH in RUN: %q", stamp)
	}
	if !hdr.ModTime.Equal(time.Unix(epoch, 0)) {
		t.Errorf("/stamp mtime %v, want the epoch", hdr.ModTime)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !cf.Created.Time.Equal(time.Unix(epoch, 0)) {
		t.Errorf("created %v, want the epoch", cf.Created.Time)
	}
	base, err := env.base.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := baseLayerCount(env.base, img); err != nil || n != len(base) {
		t.Errorf("base layers were rewritten: %d of %d kept (%v)", n, len(base), err)
	}

	// Same root, plain export: the step is cached but its layer keeps the
	// time the RUN wrote it.
	_, plain := env.buildDockerfile(t, df, root1, func(o *BuildOptions) { o.BuildArgs["SOURCE_DATE_EPOCH"] = "1700000000" })
	_, phdr := fileInImage(t, ociImage(t, plain), "stamp")
	if !phdr.ModTime.After(time.Unix(epoch, 0)) {
		t.Errorf("a plain export reused the rewritten layer: /stamp mtime %v", phdr.ModTime)
	}
	// And the rewrite again in that root gives the first result.
	_, again := env.buildDockerfile(t, df, root1, rewrite)
	if !bytes.Equal(a, again) {
		t.Error("rewriting the cached layers again gives another image")
	}
}
