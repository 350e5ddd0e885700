package main

import (
	"testing"
)

// TestCopyWildcardCache is BuildKit's testCopyWildcardCache
// (dockerfile_copy_test.go): COPY foo* keys by the files the wildcard
// matches, so changing bar (copied later) keeps the RUN after COPY foo*
// cached, and changing foo2 re-runs it.
func TestCopyWildcardCache(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	ctxDir := t.TempDir()
	root := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{
		"Dockerfile": `ARG BASE
FROM $BASE AS base
COPY foo* files/
RUN cat /dev/urandom | head -c 100 | sha256sum > unique
COPY bar files/
FROM scratch
COPY --from=base unique /
`,
		"foo1": "foo1-data",
		"foo2": "foo2-data",
		"bar":  "bar-data",
	})
	unique := func(what string) string {
		t.Helper()
		img, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs})
		if err != nil {
			t.Fatalf("%s: %v\nprogress:\n%s", what, err, progress)
		}
		u := imageFiles(t, img)["unique"]
		if u == "" {
			t.Fatalf("%s: no /unique", what)
		}
		return u
	}
	first := unique("first build")
	writeFiles(t, ctxDir, map[string]string{"bar": "bar-data-mod"})
	if got := unique("bar changed"); got != first {
		t.Errorf("changing bar re-ran the RUN after COPY foo*: %q, then %q", first, got)
	}
	writeFiles(t, ctxDir, map[string]string{"foo2": "foo2-data-mod"})
	if got := unique("foo2 changed"); got == first {
		t.Errorf("changing foo2 kept the RUN after COPY foo* cached")
	}
}
