package main

import (
	"strings"
	"testing"
)

// TestNoCacheEmptiesCacheMounts is BuildKit's testCacheMountModeNoCache
// (moby/buildkit#5305, issue 10 #5): with --no-cache a cache mount starts
// empty; without it, the cache keeps what earlier builds wrote.
func TestNoCacheEmptiesCacheMounts(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	df := `ARG BASE
FROM $BASE AS base
ARG FOO=abc
RUN --mount=type=cache,target=/cache,mode=0773 touch /cache/$FOO && ls -l /cache | wc -l > /out
`
	root := t.TempDir()
	for _, tc := range []struct {
		foo     string
		noCache bool
		want    string
	}{
		{"abc", false, "2"},
		{"def", true, "2"},
		{"ghi", false, "3"},
	} {
		_, data := env.buildDockerfile(t, df, root, func(o *BuildOptions) {
			o.BuildArgs["FOO"] = tc.foo
			o.NoCache = tc.noCache
		})
		got, _ := fileInImage(t, ociImage(t, data), "out")
		if strings.TrimSpace(got) != tc.want {
			t.Errorf("FOO=%s no-cache=%v: /out = %q, want %s", tc.foo, tc.noCache, got, tc.want)
		}
	}
}
