package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestManyLayers builds a stage of more COPY instructions than overlayfs
// can stack (500) with a RUN on top that sees every one of them: the
// lower layers are mounted through flat directories past
// snapshot.flattenDepth (issue 12).
func TestManyLayers(t *testing.T) {
	requireRootOverlay(t)
	if testing.Short() {
		t.Skip("slow")
	}
	env := newGoldenEnv(t)
	root, ctxDir := t.TempDir(), t.TempDir()
	const copies = 505
	var b strings.Builder
	b.WriteString("ARG BASE\nFROM $BASE\n")
	for i := 0; i < copies; i++ {
		fmt.Fprintf(&b, "COPY f%d /layers/\n", i)
		os.WriteFile(filepath.Join(ctxDir, fmt.Sprintf("f%d", i)), []byte(fmt.Sprint(i)), 0o644)
	}
	b.WriteString("RUN rm /layers/f1 && ls /layers | wc -l > /count\n")
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(b.String()), 0o644)
	img, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs})
	if err != nil {
		t.Fatalf("%d COPYs: %v\n%s", copies, err, progress[max(0, len(progress)-3000):])
	}
	files := imageFiles(t, img)
	if got, want := files["count"], fmt.Sprintf("%d\n", copies-1); got != want {
		t.Errorf("/count = %q, want %q", got, want)
	}
	if _, ok := files["layers/f1"]; ok {
		t.Error("layers/f1 survived its deletion")
	}
	if got := files[fmt.Sprintf("layers/f%d", copies-1)]; got != fmt.Sprint(copies-1) {
		t.Errorf("layers/f%d = %q", copies-1, got)
	}
	if ls, _ := img.Layers(); len(ls) != copies+2 {
		t.Errorf("%d layers, want %d (busybox, %d COPYs, the RUN)", len(ls), copies+2, copies)
	}
}
