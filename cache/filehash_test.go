package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// countHashes counts real reads of file content during a test.
func countHashes(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	orig := hashFileAt
	hashFileAt = func(p string, want hashEntry) (digest.Digest, bool, error) {
		n.Add(1)
		return orig(p, want)
	}
	t.Cleanup(func() { hashFileAt = orig })
	return &n
}

// noRacyWindow trusts fresh timestamps, so the test need not wait.
func noRacyWindow(t *testing.T) {
	old := racyWindow
	racyWindow = -time.Hour
	t.Cleanup(func() { racyWindow = old })
}

func sum(t *testing.T, c *FileHashCache, p string) digest.Digest {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Sum(p, fi)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestFileHashCache(t *testing.T) {
	noRacyWindow(t)
	hashes := countHashes(t)
	dir := t.TempDir()
	cachePath := filepath.Join(dir, "state", "hashes.json")
	files := map[string]string{}
	for i := range 20 {
		p := filepath.Join(dir, fmt.Sprintf("f%02d", i))
		files[p] = fmt.Sprintf("content %d", i)
		os.WriteFile(p, []byte(files[p]), 0o644)
	}
	c, err := NewFileHashCache(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	for p, content := range files {
		if got := sum(t, c, p); got != digest.FromString(content) {
			t.Fatalf("%s: %s, want sha256 of content", p, got)
		}
	}
	if hashes.Load() != 20 {
		t.Fatalf("first pass hashed %d files, want 20", hashes.Load())
	}
	for p := range files {
		sum(t, c, p)
	}
	if hashes.Load() != 20 {
		t.Fatalf("second pass re-hashed: %d", hashes.Load())
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}

	// A new process: loaded from disk, nothing is read again.
	c2, err := NewFileHashCache(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Len() != 20 {
		t.Fatalf("loaded %d entries", c2.Len())
	}
	var wg sync.WaitGroup
	for p, content := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fi, _ := os.Lstat(p)
			d, err := c2.Sum(p, fi)
			if err != nil || d != digest.FromString(content) {
				t.Errorf("%s: %s %v", p, d, err)
			}
		}()
	}
	wg.Wait()
	if hashes.Load() != 20 {
		t.Fatalf("after reload re-hashed: %d", hashes.Load())
	}

	// A change (same size, so only the timestamps tell) is noticed.
	p := filepath.Join(dir, "f03")
	time.Sleep(10 * time.Millisecond)
	os.WriteFile(p, []byte("CONTENT 3"), 0o644)
	if got := sum(t, c2, p); got != digest.FromString("CONTENT 3") {
		t.Fatalf("changed file: %s", got)
	}
	// Replacing the file (new inode) with older timestamps is noticed too.
	q := filepath.Join(dir, "f04")
	old, _ := os.Lstat(q)
	os.Remove(q)
	os.WriteFile(q, []byte("content X"), 0o644)
	os.Chtimes(q, old.ModTime(), old.ModTime())
	if got := sum(t, c2, q); got != digest.FromString("content X") {
		t.Fatalf("replaced file: %s", got)
	}
	if hashes.Load() != 22 {
		t.Fatalf("hashed %d, want 22", hashes.Load())
	}
}

func TestFileHashCacheRacy(t *testing.T) {
	hashes := countHashes(t)
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("a"), 0o644)
	c, err := NewFileHashCache(filepath.Join(t.TempDir(), "h"))
	if err != nil {
		t.Fatal(err)
	}
	sum(t, c, p)
	sum(t, c, p)
	// Freshly written: a same-size rewrite could keep its timestamps, so
	// the digest is not trusted yet.
	if hashes.Load() != 2 {
		t.Fatalf("racily clean file hashed %d times, want 2", hashes.Load())
	}
}

func TestFileHashCacheErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{not json"), 0o600)
	c, err := NewFileHashCache(bad)
	if err != nil || c.Len() != 0 {
		t.Fatalf("damaged cache file: %v %d", err, c.Len())
	}
	if _, err := c.Sum(dir, nil); err == nil {
		t.Fatal("directory hashed")
	}
	if _, err := c.Sum(filepath.Join(dir, "missing"), nil); err == nil {
		t.Fatal("missing file hashed")
	}
	// A file gone between its stat and its open: the error is the open's
	// *os.PathError alone, naming the path once, for the caller to rename.
	gone := filepath.Join(dir, "gone")
	os.WriteFile(gone, []byte("x"), 0o600)
	fi, err := os.Lstat(gone)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(gone)
	_, err = c.Sum(gone, fi)
	var pe *os.PathError
	if !errors.As(err, &pe) || err.Error() != "open "+gone+": no such file or directory" {
		t.Errorf("open error = %v, want the *os.PathError alone", err)
	}
	if err := c.Save(); err != nil { // nothing changed: no write needed
		t.Fatal(err)
	}
}

func TestBlobPrune(t *testing.T) {
	s := openStore(t, t.TempDir())
	b := s.Blobs()
	var ds []digest.Digest
	for i := range 4 {
		d, _, err := b.Put(t.Context(), strings.NewReader(fmt.Sprint("blob", i)), "", -1)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	keep := map[digest.Digest]bool{ds[0]: true, ds[2]: true}
	// Blobs newer than the cut-off survive even when unreferenced.
	removed, _, err := b.Prune(func(d digest.Digest) bool { return keep[d] }, time.Now().Add(-time.Hour))
	if err != nil || len(removed) != 0 {
		t.Fatalf("young blobs pruned: %v %v", removed, err)
	}
	removed, freed, err := b.Prune(func(d digest.Digest) bool { return keep[d] }, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || freed != int64(len("blob1")+len("blob3")) {
		t.Fatalf("removed %v (%d bytes)", removed, freed)
	}
	var left []digest.Digest
	b.Walk(func(d digest.Digest, _ int64) error { left = append(left, d); return nil })
	if len(left) != 2 || !keep[left[0]] || !keep[left[1]] {
		t.Fatalf("left %v", left)
	}
}
