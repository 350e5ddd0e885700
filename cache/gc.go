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
		if err := fn(d, fi.Size()); err != nil {
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
	err := s.Walk(func(d digest.Digest, size int64) error {
		if keep(d) {
			return nil
		}
		fi, err := os.Stat(s.Path(d))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("blob %s: %w", d, err)
		}
		if !fi.ModTime().Before(before) {
			return nil
		}
		if err := s.Delete(d); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		removed = append(removed, d)
		freed += size
		return nil
	})
	return removed, freed, err
}
