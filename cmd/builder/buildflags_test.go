package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildNetworkNone checks builder build --network none: every RUN that
// does not ask for another network (RUN --network=default included) gets
// its own network namespace with only lo, as in docker build.
func TestBuildNetworkNone(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	ctxDir := t.TempDir()
	const list = `tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' '`
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": `ARG BASE
FROM $BASE
RUN ` + list + ` > /plain
RUN --network=default ` + list + ` > /default
`})
	opts := BuildOptions{ContextDir: ctxDir, Root: t.TempDir(), BuildArgs: env.baseArgs}
	opts.Sandbox.Network = "none"
	img, progress, _, err := e2eBuild(t, opts)
	if err != nil {
		t.Fatalf("build: %v\nprogress:\n%s", err, progress)
	}
	files := imageFiles(t, img)
	for _, f := range []string{"plain", "default"} {
		if got := strings.TrimSpace(files[f]); got != "lo" {
			t.Errorf("with --network none, RUN sees %q in /%s, want only lo", got, f)
		}
	}

	// The same build with the default network is a different step.
	opts.Sandbox.Network = ""
	img, progress, _, err = e2eBuild(t, opts)
	if err != nil {
		t.Fatalf("build: %v\nprogress:\n%s", err, progress)
	}
	if got := strings.TrimSpace(imageFiles(t, img)["plain"]); got == "lo" {
		t.Errorf("with the default network RUN sees only %q: the --network none result was reused", got)
	}
}

func TestParseLabels(t *testing.T) {
	t.Parallel()
	got := parseLabels([]string{"b=x", "c=y=z", "d"})
	want := map[string]string{"b": "x", "c": "y=z", "d": ""}
	if len(got) != len(want) {
		t.Fatalf("labels %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("label %s = %q, want %q", k, got[k], v)
		}
	}
	if parseLabels(nil) != nil {
		t.Error("no --label must keep no labels")
	}
}

// TestBuildInvalidTagBeforeWork checks that a bad -t is refused before
// the build starts: nothing is created under --root.
func TestBuildInvalidTagBeforeWork(t *testing.T) {
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "FROM scratch\nCOPY Dockerfile /\n"})
	for _, tag := range []string{"../x", "a//b", "Upper:1", "x:"} {
		root := filepath.Join(t.TempDir(), "root")
		cmd := newBuildCommand()
		cmd.SetArgs([]string{"--root", root, "-t", "ok:1", "-t", tag, ctxDir})
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("invalid tag %q: invalid reference format", tag)) {
			t.Errorf("-t %s: %v, want an invalid tag error", tag, err)
		}
		if _, err := os.Stat(root); !os.IsNotExist(err) {
			t.Errorf("-t %s: the root was created before the tag was checked (%v)", tag, err)
		}
	}
}
