package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestManyLayers builds a stage of 150 COPYs and a RUN on top (the RUN
// mounts every layer: overlay options far over one page), and refuses
// 1000 COPYs before running anything with an error naming the line
// (issue 12).
func TestManyLayers(t *testing.T) {
	requireRootOverlay(t)
	if testing.Short() {
		t.Skip("slow")
	}
	env := newGoldenEnv(t)
	root, ctxDir := t.TempDir(), t.TempDir()
	build := func(copies int) (string, error) {
		var b strings.Builder
		b.WriteString("ARG BASE\nFROM $BASE\n")
		for i := 0; i < copies; i++ {
			fmt.Fprintf(&b, "COPY f%d /layers/\n", i)
			os.WriteFile(filepath.Join(ctxDir, fmt.Sprintf("f%d", i)), []byte{byte(i)}, 0o644)
		}
		b.WriteString("RUN ls /layers | wc -l > /count\n")
		os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(b.String()), 0o644)
		img, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs})
		if err != nil {
			return progress, err
		}
		if got, want := imageFiles(t, img)["count"], fmt.Sprintf("%d\n", copies); got != want {
			t.Errorf("%d copies: /count = %q, want %q", copies, got, want)
		}
		return progress, nil
	}
	if progress, err := build(150); err != nil {
		t.Fatalf("150 COPYs: %v\n%s", err, progress[max(0, len(progress)-3000):])
	}
	progress, err := build(1000)
	if err == nil || !strings.Contains(progress, "Dockerfile:502: this instruction makes layer 501 of the stage, more than the 500 overlayfs can stack") {
		t.Fatalf("1000 COPYs: %v\n%s", err, progress[max(0, len(progress)-3000):])
	}
	if strings.Contains(progress, "COPY f0 ") {
		t.Errorf("a step ran before the error:\n%s", progress)
	}
}
