package executor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A RUN on a deep chain of layers gets overlay options longer than the page
// mount(2) copies: the sandbox must still assemble its root filesystem.
func TestOverlayRootfsLongOptions(t *testing.T) {
	requireRoot(t)
	e := newExecutor(t)
	// Laid out as the snapshotter lays out its snapshots.
	dir := filepath.Join(t.TempDir(), strings.Repeat("long-root-", 5), "snapshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bottom := filepath.Join(dir, "base")
	if err := os.Rename(busyboxRoot(t, nil), bottom); err != nil {
		t.Fatal(err)
	}
	const depth = 60
	lowers := []string{bottom}
	for i := 0; i < depth; i++ {
		l := filepath.Join(dir, fmt.Sprint(i), "fs")
		if err := os.MkdirAll(filepath.Join(l, "layers"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l, "layers", fmt.Sprint(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		lowers = append([]string{l}, lowers...)
	}
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := []string{"lowerdir=" + strings.Join(lowers, ":"), "upperdir=" + upper, "workdir=" + work}
	if n := len(strings.Join(opts, ",")); n < os.Getpagesize() {
		t.Fatalf("options are only %d bytes; the test needs more than a page", n)
	}
	r := run(t, e, Spec{
		Rootfs: []Mount{{Type: "overlay", Source: "overlay", Target: "/", Options: opts}},
		Args:   sh("ls /layers | wc -l && echo hi > /hello"),
	})
	if r.err != nil {
		t.Fatalf("%v: %s", r.err, r.stderr)
	}
	if got := strings.TrimSpace(r.stdout); got != fmt.Sprint(depth) {
		t.Errorf("/layers has %s entries, want %d", got, depth)
	}
	if b, err := os.ReadFile(filepath.Join(upper, "hello")); err != nil || string(b) != "hi\n" {
		t.Errorf("upper/hello = %q, %v", b, err)
	}
}
