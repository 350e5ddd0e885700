package ops

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/solver/ops/internal/fileop"
)

func TestMountSelectors(t *testing.T) {
	t.Parallel()
	op := llb.ExecOp{Mounts: []llb.Mount{
		{Input: 0, Dest: "/"},
		{Input: 1, Dest: "/a", Selector: "/out/sub"},
		{Input: 1, Dest: "/b", Selector: "out"},
		{Input: 2, Dest: "/c", Selector: "/x"},
		{Input: 2, Dest: "/d"},
		{Input: 0, Dest: "/e", Selector: "/y"},
		{Input: 3, Dest: "/f", Selector: "/t", Type: llb.MountTmpfs},
		{Input: 3, Dest: "/g", Selector: "/z", Type: llb.MountCache},
	}}
	got := mountSelectors(op, 4)
	want := map[int][]string{1: {"/out"}, 3: {"/z"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mountSelectors = %v, want %v", got, want)
	}
}

// TestSelectedDigest: only the selected directory counts (issue 10 #12).
func TestSelectedDigest(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "out"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "out", "f"), []byte("1"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "other"), []byte("1"), 0o644))
	w := New(Options{StateDir: t.TempDir()})
	in := &localResult{in: fileop.Input{Root: root, Local: true}}
	ctx := context.Background()
	sum := func() string {
		t.Helper()
		d, err := w.selectedDigest(ctx, in, []string{"/out"})
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	first := sum()
	must(t, os.WriteFile(filepath.Join(root, "other"), []byte("2"), 0o644))
	if sum() != first {
		t.Error("a file outside the selector changed the digest")
	}
	must(t, os.WriteFile(filepath.Join(root, "out", "f"), []byte("2"), 0o644))
	if sum() == first {
		t.Error("a change inside the selector did not change the digest")
	}
	if _, err := w.selectedDigest(ctx, in, []string{"/missing"}); err != nil {
		t.Errorf("missing selector: %v", err)
	}
}
