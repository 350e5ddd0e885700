package cache

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	digest "github.com/opencontainers/go-digest"
)

// ErrCorrupt is returned (wrapped) for a blob whose content does not match
// its digest.
var ErrCorrupt = errors.New("content does not match its digest")

// Verify checks that blob d is present, has size (when size >= 0) and
// hashes to d. A corrupt blob is deleted (it is absent from then on, to be
// fetched or rebuilt again) and reported with ErrCorrupt; a missing one
// with ErrNotFound, unless the store's fetcher can fetch it (a lazily
// imported blob is not damaged: it is verified when fetched).
//
// Hashing a large blob on every build would cost as much as reading it, so
// a blob that hashed right is stamped (verified/<hex> records its size,
// inode and mtime) and hashed again only when the stamp no longer matches:
// any rewrite of the file changes its mtime or inode. VerifyAll ignores the
// stamps.
func (s *BlobStore) Verify(d digest.Digest, size int64) error {
	return s.verify(d, size, false, true)
}

// VerifyStored is Verify for a blob that must be stored now: a missing
// blob is ErrNotFound even when the fetcher could fetch it (for the code
// that fetches).
func (s *BlobStore) VerifyStored(d digest.Digest, size int64) error {
	return s.verify(d, size, false, false)
}

func (s *BlobStore) verify(d digest.Digest, size int64, force, lazyOK bool) error {
	if err := d.Validate(); err != nil {
		return err
	}
	fi, err := os.Stat(s.Path(d))
	if errors.Is(err, os.ErrNotExist) {
		if b := s.fetcher.Load(); lazyOK && b != nil && b.f.CanFetch(d) {
			return nil // imported lazily: fetched (and verified) when read
		}
		return fmt.Errorf("blob %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	wrongSize := size >= 0 && fi.Size() != size
	st := stamp(fi)
	sp := s.stampPath(d)
	if !force && !wrongSize {
		if b, err := os.ReadFile(sp); err == nil && string(b) == st {
			return nil
		}
	}
	f, err := os.Open(s.Path(d))
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	defer f.Close()
	v := d.Algorithm().Digester()
	if _, err := io.Copy(v.Hash(), f); err != nil {
		return fmt.Errorf("blob %s: reading: %w", d, err)
	}
	if v.Digest() != d {
		s.Delete(d)
		return fmt.Errorf("blob %s: %w (it hashes to %s): removed", d, ErrCorrupt, v.Digest())
	}
	if wrongSize {
		// The blob is right: whoever expected another size is not.
		return fmt.Errorf("blob %s: %d bytes, expected %d", d, fi.Size(), size)
	}
	// Stamped after the hash: a rewrite during it changes the stamp.
	if err := os.MkdirAll(filepath.Dir(sp), 0o700); err == nil {
		os.WriteFile(sp, []byte(st), 0o600) // a torn stamp only costs a re-hash
	}
	return nil
}

// VerifyAll re-hashes every blob (ignoring stamps) and returns the digests
// of the corrupt ones, which it removes. progress, when not nil, is called
// for every blob checked.
func (s *BlobStore) VerifyAll(progress func(d digest.Digest, size int64, err error)) ([]digest.Digest, error) {
	var bad []digest.Digest
	err := s.Walk(func(d digest.Digest, size int64) error {
		err := s.verify(d, -1, true, false)
		if errors.Is(err, ErrNotFound) {
			return nil // removed meanwhile
		}
		if err != nil && errors.Is(err, ErrCorrupt) {
			bad = append(bad, d)
		} else if err != nil {
			return err
		}
		if progress != nil {
			progress(d, size, err)
		}
		return nil
	})
	return bad, err
}

// stampVerified stamps blob d, which was just stored from bytes that hashed
// to d.
func (s *BlobStore) stampVerified(d digest.Digest) {
	fi, err := os.Stat(s.Path(d))
	if err != nil {
		return
	}
	sp := s.stampPath(d)
	if err := os.MkdirAll(filepath.Dir(sp), 0o700); err == nil {
		os.WriteFile(sp, []byte(stamp(fi)), 0o600)
	}
}

// Stamped reports whether fi (of blob d, opened by the caller) is the
// version of the file the store last verified: its content hashed to d
// and the file was not rewritten since (see Verify). A reader of such a
// blob need not hash it again.
func (s *BlobStore) Stamped(d digest.Digest, fi os.FileInfo) bool {
	if d.Validate() != nil {
		return false
	}
	b, err := os.ReadFile(s.stampPath(d))
	return err == nil && string(b) == stamp(fi)
}

func (s *BlobStore) stampPath(d digest.Digest) string {
	return filepath.Join(s.root, "verified", d.Algorithm().String(), d.Encoded())
}

// stamp identifies one version of a file's content.
func stamp(fi os.FileInfo) string {
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%d %d %d", fi.Size(), ino, fi.ModTime().UnixNano())
}
