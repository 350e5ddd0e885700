package main

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/build"
)

// TestHumanAgo: docker's units.HumanDuration plus " ago", hours rounded
// (1h45m is "2 hours", as docker images and docker ps show it).
func TestHumanAgo(t *testing.T) {
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "Less than a second ago"},
		{time.Second, "1 second ago"},
		{30 * time.Second, "30 seconds ago"},
		{90 * time.Second, "About a minute ago"},
		{45 * time.Minute, "45 minutes ago"},
		{time.Hour + 20*time.Minute, "About an hour ago"},
		{time.Hour + 45*time.Minute, "2 hours ago"},
		{47*time.Hour + 40*time.Minute, "2 days ago"},
		{10 * 24 * time.Hour, "10 days ago"},
		{3 * 7 * 24 * time.Hour, "3 weeks ago"},
		{90 * 24 * time.Hour, "3 months ago"},
		{3 * 365 * 24 * time.Hour, "3 years ago"},
	} {
		if got := humanAgo(now, now.Add(-tt.d)); got != tt.want {
			t.Errorf("humanAgo(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := humanAgo(now, time.Time{}); got != "N/A" {
		t.Errorf("humanAgo(zero) = %q, want N/A", got)
	}
}

// TestOutputStdout builds with -o - and type=oci|docker,dest=- and reads
// the archives from stdout; nothing named "-" appears in the working
// directory.
func TestOutputStdout(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nCOPY hello /hello\n", "hello": "hi\n"})
	wd := t.TempDir()
	t.Chdir(wd)
	root := t.TempDir()
	for _, spec := range []string{"-", "type=tar,dest=-", "type=oci,dest=-", "type=docker,dest=-"} {
		out, err := build.ParseOutputSpec(spec)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		var stdout, progress bytes.Buffer
		o := BuildOptions{ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs, Progress: "plain", Outputs: []Output{out}, Stdout: &stdout}
		if err := Build(context.Background(), o, &progress); err != nil {
			t.Fatalf("%s: %v\n%s", spec, err, progress.String())
		}
		files := map[string]bool{}
		tr := tar.NewReader(&stdout)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: stdout is not a tar: %v", spec, err)
			}
			files[strings.TrimPrefix(h.Name, "./")] = true
		}
		want := map[string]string{"-": "hello", "type=tar,dest=-": "hello", "type=oci,dest=-": "index.json", "type=docker,dest=-": "manifest.json"}[spec]
		if !files[want] {
			t.Errorf("%s: stdout has no %s: %v", spec, want, files)
		}
		if !strings.Contains(progress.String(), "stdout") {
			t.Errorf("%s: progress does not name stdout:\n%s", spec, progress.String())
		}
	}
	if ents, _ := os.ReadDir(wd); len(ents) != 0 {
		t.Errorf("the working directory has %v, want nothing", ents)
	}
}
