package fsutil

import (
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
)

// TestReadDirLstat: the same names, order and information as
// ReadDirNames plus os.Lstat, for every kind of entry.
func TestReadDirLstat(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "b-file"), []byte("hello"), 0o640))
	must(os.Mkdir(filepath.Join(dir, "a-dir"), 0o750))
	must(os.Symlink("b-file", filepath.Join(dir, "c-link")))
	must(syscall.Mkfifo(filepath.Join(dir, "d-fifo"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "e-setuid"), nil, 0o755))
	must(os.Chmod(filepath.Join(dir, "e-setuid"), 0o4755|os.ModeSetuid))
	must(os.Mkdir(filepath.Join(dir, "f-sticky"), 0o755))
	must(os.Chmod(filepath.Join(dir, "f-sticky"), 0o777|os.ModeSticky))

	got, err := ReadDirLstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	names, err := ReadDirNames(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(names) {
		t.Fatalf("%d entries, want %d", len(got), len(names))
	}
	for i, n := range names {
		want, err := os.Lstat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		g := got[i]
		if g.Name() != n || g.Mode() != want.Mode() || g.Size() != want.Size() || !g.ModTime().Equal(want.ModTime()) || g.IsDir() != want.IsDir() {
			t.Errorf("%s: got %s %v %d %v, want %v %d %v", n, g.Name(), g.Mode(), g.Size(), g.ModTime(), want.Mode(), want.Size(), want.ModTime())
		}
		if !reflect.DeepEqual(g.Sys().(*syscall.Stat_t), want.Sys().(*syscall.Stat_t)) {
			t.Errorf("%s: Sys() differs", n)
		}
	}
	if _, err := ReadDirLstat(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("missing dir: %v", err)
	}
}
