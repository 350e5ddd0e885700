package main

// Ports of BuildKit frontend tests (dockerfile_core_test.go,
// dockerfile_multistage_test.go, dockerfile_cache_test.go) that need two builds on one root, the
// progress output or a literal image name, so they cannot be golden cases.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildKitNoSnapshotLeak ports testNoSnapshotLeak: building the same
// Dockerfile again on the same root adds no cache records.
func TestBuildKitNoSnapshotLeak(t *testing.T) {
	requireRootOverlay(t)
	e := newNamedEnv(t)
	root := t.TempDir()
	records := func() int {
		t.Helper()
		var b bytes.Buffer
		if err := DU(context.Background(), DUOptions{Root: root, Verbose: true}, &b); err != nil {
			t.Fatalf("du: %v\n%s", err, b.String())
		}
		return strings.Count(b.String(), "\n")
	}
	ctx := map[string]string{"foo": "contents"}
	build := func() {
		t.Helper()
		if progress, err := e.build(t, "FROM scratch\nCOPY foo /\n", ctx, BuildOptions{Root: root}); err != nil {
			t.Fatalf("build: %v\nprogress:\n%s", err, progress)
		}
	}
	build()
	first := records()
	if first < 3 {
		t.Fatalf("du --verbose lists %d lines after a build: no records to compare", first)
	}
	build()
	if second := records(); second != first {
		t.Errorf("du --verbose lists %d lines after another build, %d before", second, first)
	}
}

// TestBuildKitContextChangeDirToFile ports testContextChangeDirToFile
// (tonistiigi/fsutil#46): a context path that was a directory in the
// previous build on the root and is a file now is copied as the file.
func TestBuildKitContextChangeDirToFile(t *testing.T) {
	requireRootOverlay(t)
	e := newNamedEnv(t)
	root := t.TempDir()
	const df = "FROM scratch\nCOPY foo /\n"
	if progress, err := e.build(t, df, map[string]string{"foo/bar": "contents"}, BuildOptions{Root: root}); err != nil {
		t.Fatalf("build with foo/: %v\nprogress:\n%s", err, progress)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"foo": "contents2", "Dockerfile": df})
	img, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: dir, Root: root})
	if err != nil {
		t.Fatalf("build with foo: %v\nprogress:\n%s", err, progress)
	}
	if got := imageFiles(t, img)["foo"]; got != "contents2" {
		t.Errorf("/foo = %q, want contents2", got)
	}
}

// TestBuildKitStepNames ports testStepNames: the progress names steps
// [stage n/total] with the command as written.
func TestBuildKitStepNames(t *testing.T) {
	requireRootOverlay(t)
	e := newNamedEnv(t)
	progress, err := e.build(t, `ARG BASE
FROM $BASE AS base
WORKDIR /out
RUN echo "base" > base
FROM scratch
COPY --from=base --chmod=0644 /out /out
`, nil, BuildOptions{})
	if err != nil {
		t.Fatalf("build: %v\nprogress:\n%s", err, progress)
	}
	for _, want := range []string{`[base 3/3] RUN echo "base" > base`, `[stage-1 1/1] COPY --from=base --chmod=0644 /out /out`} {
		if !strings.Contains(progress, want) {
			t.Errorf("progress lacks step %q:\n%s", want, progress)
		}
	}
}

// TestBuildKitMultiStageImplicitFrom ports the first build of
// testMultiStageImplicitFrom: COPY --from an image that is no stage.
func TestBuildKitMultiStageImplicitFrom(t *testing.T) {
	requireRootOverlay(t)
	e := newNamedEnv(t)
	files := e.files(t, "FROM scratch\nCOPY --from="+e.baseArgs["BASE"]+" /etc/passwd test\n", nil)
	if !strings.Contains(files["test"], "root") {
		t.Errorf("/test = %q, want the image's /etc/passwd", files["test"])
	}
}

// TestBuildKitReproducibleIDs ports testReproducibleIDs
// (dockerfile_cache_test.go): the same build twice on one root gives the
// same image digest.
func TestBuildKitReproducibleIDs(t *testing.T) {
	requireRootOverlay(t)
	e := newNamedEnv(t)
	root := t.TempDir()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": "ARG BASE\nFROM $BASE\nENV foo=bar\nCOPY foo /\nRUN echo bar > bar\n",
		"foo":        "foo-contents",
	})
	var digests []string
	for i := range 2 {
		img, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: dir, Root: root, BuildArgs: e.baseArgs, Tags: []string{fmt.Sprintf("example.com/moby/dockerfileids%d:test", i)}})
		if err != nil {
			t.Fatalf("build %d: %v\nprogress:\n%s", i+1, err, progress)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds gave %s and %s", digests[0], digests[1])
	}
}

// TestBuildKitWildcardRenameCache ports testWildcardRenameCache
// (dockerfile_cache_test.go): after file1 is renamed to file2, COPY file*
// is not taken from the cache and the RUN that needs file1 fails.
func TestBuildKitWildcardRenameCache(t *testing.T) {
	requireRootOverlay(t)
	e := newNamedEnv(t)
	root := t.TempDir()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": "ARG BASE\nFROM $BASE\nCOPY file* /files/\nRUN ls /files/file1\n",
		"file1":      "foo",
	})
	if _, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: dir, Root: root, BuildArgs: e.baseArgs}); err != nil {
		t.Fatalf("build: %v\nprogress:\n%s", err, progress)
	}
	if err := os.Rename(filepath.Join(dir, "file1"), filepath.Join(dir, "file2")); err != nil {
		t.Fatal(err)
	}
	if _, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: dir, Root: root, BuildArgs: e.baseArgs}); err == nil {
		t.Fatalf("build after the rename succeeded: the cache was not invalidated\nprogress:\n%s", progress)
	}
}

// TestBuildKitMountDuplicate ports testMountDuplicate
// (dockerfile_mount_test.go, moby/buildkit#4123): a RUN mounting the
// context and a file of it sees a changed a.txt on the next build on the
// same root.
func TestBuildKitMountDuplicate(t *testing.T) {
	requireRootOverlay(t)
	e := newNamedEnv(t)
	root := t.TempDir()
	const df = `ARG BASE
FROM $BASE AS base
RUN --mount=source=.,target=/tmp/test \
  --mount=source=b.txt,target=/tmp/b.txt \
  cat /tmp/test/a.txt /tmp/b.txt > /combined.txt
FROM scratch
COPY --from=base /combined.txt /
`
	for _, text := range []string{"foo\n", "updated\n"} {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"Dockerfile": df, "a.txt": text, "b.txt": "bar\n"})
		img, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: dir, Root: root, BuildArgs: e.baseArgs})
		if err != nil {
			t.Fatalf("build: %v\nprogress:\n%s", err, progress)
		}
		if got := imageFiles(t, img)["combined.txt"]; got != text+"bar\n" {
			t.Errorf("a.txt %q: combined.txt = %q, want %q", text, got, text+"bar\n")
		}
	}
}
