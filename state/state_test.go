package state

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenLocks(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "root")
	if _, err := Open(dir, Options{Lock: LockExclusive, MustExist: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing root with MustExist: %v", err)
	}
	build, err := Open(dir, Options{Lock: LockShared})
	if err != nil {
		t.Fatal(err)
	}
	other, err := Open(dir, Options{Lock: LockShared, NoWait: true})
	if err != nil {
		t.Fatalf("two shared holders: %v", err)
	}
	if _, err := Open(dir, Options{Lock: LockExclusive, NoWait: true}); !errors.Is(err, ErrBusy) {
		t.Fatalf("exclusive while shared: %v, want ErrBusy", err)
	}
	reader, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("no lock while shared: %v", err)
	}
	reader.Close()
	build.Close()
	other.Close()
	prune, err := Open(dir, Options{Lock: LockExclusive, NoWait: true, MustExist: true})
	if err != nil {
		t.Fatalf("exclusive after the shared holders closed: %v", err)
	}
	if _, err := Open(dir, Options{Lock: LockShared, NoWait: true}); !errors.Is(err, ErrBusy) {
		t.Fatalf("shared while exclusive: %v, want ErrBusy", err)
	}
	if err := prune.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLayout opens every part once and checks where each one lives: the
// layout is what older roots have on disk.
func TestLayout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r, err := Open(dir, Options{Lock: LockShared})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := r.Blobs()
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Cache()
	if err != nil {
		t.Fatal(err)
	}
	if c2, _ := r.Cache(); c2 != c {
		t.Error("Cache opened twice")
	}
	if b, _ := r.Blobs(); b != c.Blobs() {
		t.Error("Blobs is not the cache's once the cache is open")
	}
	im, err := r.Images()
	if err != nil {
		t.Fatal(err)
	}
	if im.Blobs() != c.Blobs() && im.Blobs() != blobs {
		t.Error("the image store is not over the root's blob store")
	}
	if _, err := r.Snapshots(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Containers(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.FileHashes(); err != nil {
		t.Fatal(err)
	}
	tmp, err := r.TempDir("x-")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(tmp) != filepath.Join(dir, "tmp") {
		t.Errorf("TempDir %s, want it under %s/tmp", tmp, dir)
	}
	if r.RegistryDir() != filepath.Join(dir, "registry") || r.WorkerDir() != dir || r.Dir() != dir {
		t.Errorf("RegistryDir %s WorkerDir %s Dir %s", r.RegistryDir(), r.WorkerDir(), r.Dir())
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"lock", "cache/content/blobs/sha256", "cache/keys", "cache/meta", "images", "snapshots", "containers"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
