package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Walk calls fn for every stored blob with its size, in digest order.
func (s *BlobStore) Walk(fn func(d digest.Digest, size int64) error) error {
	return s.walk(func(d digest.Digest, fi fs.FileInfo) error { return fn(d, fi.Size()) })
}

// walk calls fn for every stored blob with its file info, in digest order.
func (s *BlobStore) walk(fn func(d digest.Digest, fi fs.FileInfo) error) error {
	dir := filepath.Join(s.root, "blobs", string(digest.Canonical))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("blob store %s: %w", dir, err)
	}
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.Canonical, e.Name())
		if d.Validate() != nil {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("blob %s: %w", d, err)
		}
		if err := fn(d, fi); err != nil {
			return err
		}
	}
	return nil
}

// Prune removes the blobs that keep rejects and that were stored before
// the time given (use the start of the GC run, or earlier, so that a blob a
// concurrent build has just written but not yet referenced survives). It
// returns the removed digests and the bytes freed.
func (s *BlobStore) Prune(keep func(digest.Digest) bool, before time.Time) ([]digest.Digest, int64, error) {
	var removed []digest.Digest
	var freed int64
	err := s.walk(func(d digest.Digest, fi fs.FileInfo) error {
		if keep(d) || !fi.ModTime().Before(before) {
			return nil
		}
		if err := s.Delete(d); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		removed = append(removed, d)
		freed += fi.Size()
		return nil
	})
	return removed, freed, err
}

// KeyEntry is one stored cache key, as the garbage collector sees it.
type KeyEntry struct {
	Key digest.Digest
	// ID is the result the key points to.
	ID string
	// Info is what the key was computed from (nil for keys saved by Save).
	Info *KeyInfo
	// Time is when the key was last saved (zero for old log lines).
	Time time.Time
	// Used is when the key was last used by a build (see Store.Touch);
	// zero when it never was after being saved.
	Used time.Time
}

// LastUsed is the later of e.Time and e.Used.
func (e KeyEntry) LastUsed() time.Time {
	if e.Used.After(e.Time) {
		return e.Used
	}
	return e.Time
}

// Entries returns every stored key, in no order.
func (s *Store) Entries() ([]KeyEntry, error) {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	if err := s.keys.refresh(); err != nil {
		return nil, err
	}
	out := make([]KeyEntry, 0, len(s.keys.entries))
	for k, e := range s.keys.entries {
		ke := KeyEntry{Key: k, ID: e.id, Info: e.info}
		if e.time != 0 {
			ke.Time = time.Unix(0, e.time)
		}
		if e.used != 0 {
			ke.Used = time.Unix(0, e.used)
		}
		out = append(out, ke)
	}
	return out, nil
}

// DropKeys removes the given keys from the key log and compacts it. It
// returns how many it removed.
func (s *Store) DropKeys(keys map[digest.Digest]bool) (int, error) {
	return s.keys.compact(func(k digest.Digest, _ string) bool { return keys[k] })
}
