package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/builderdev/builder/internal/fsutil"
	digest "github.com/opencontainers/go-digest"
)

// ErrNotFound is returned (wrapped) for a blob, key or record that is not there.
var ErrNotFound = errors.New("not found")

// BlobStore is a content-addressed store of blobs under
// ROOT/blobs/sha256/<hex>. A blob is written once: into a temp file in the
// same filesystem, verified, fsynced, then renamed into place, so a reader
// never sees a partial blob and a crash leaves only temp files, which
// OpenBlobStore removes.
//
// Many processes share the store: a temp file is named
// "blob-<lease>-*" after the lease of the process writing it
// (fsutil.OwnLease in DIR/leases), and OpenBlobStore removes only the temp
// files of dead processes.
type BlobStore struct {
	root    string
	owner   string
	fetcher atomic.Pointer[fetcherBox]
}

// Fetcher downloads blobs the store does not hold yet but knows where to
// find: the layers of a result imported lazily from a remote cache, which
// are downloaded only when something reads them (see SetFetcher).
type Fetcher interface {
	// CanFetch says whether blob d can be fetched.
	CanFetch(d digest.Digest) bool
	// Fetch stores blob d in the store (verified by its digest).
	Fetch(ctx context.Context, d digest.Digest) error
}

type fetcherBox struct{ f Fetcher }

// SetFetcher makes Open fetch a missing blob with f before it fails, so
// lazily imported layers are downloaded by the first reader that needs
// their bytes (an export, a push that cannot mount them, an unpack).
func (s *BlobStore) SetFetcher(f Fetcher) {
	if f == nil {
		s.fetcher.Store(nil)
		return
	}
	s.fetcher.Store(&fetcherBox{f})
}

// Available says whether blob d is stored or can be fetched.
func (s *BlobStore) Available(d digest.Digest) bool {
	if _, err := s.Stat(d); err == nil {
		return true
	}
	b := s.fetcher.Load()
	return b != nil && b.f.CanFetch(d)
}

// Ensure makes sure blob d is stored, fetching it when it is not and a
// fetcher can.
func (s *BlobStore) Ensure(ctx context.Context, d digest.Digest) error {
	_, err := s.Stat(d)
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	b := s.fetcher.Load()
	if b == nil || !b.f.CanFetch(d) {
		return err
	}
	if err := b.f.Fetch(ctx, d); err != nil {
		return fmt.Errorf("fetching blob %s: %w", d, err)
	}
	_, err = s.Stat(d)
	return err
}

// OpenBlobStore opens (creating) the blob store at dir.
func OpenBlobStore(dir string) (*BlobStore, error) {
	for _, d := range []string{filepath.Join(dir, "blobs", "sha256"), filepath.Join(dir, "ingest")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	leases := filepath.Join(dir, "leases")
	owner, err := fsutil.OwnLease(leases)
	if err != nil {
		return nil, fmt.Errorf("blob store %s: %w", dir, err)
	}
	// Leftovers of interrupted writes of dead processes.
	tmp, _ := os.ReadDir(filepath.Join(dir, "ingest"))
	for _, e := range tmp {
		if o := fsutil.OwnerOf(e.Name(), "blob-"); o != "" {
			if fsutil.LeaseLive(leases, o) {
				continue
			}
		} else if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < time.Hour {
			continue // no owner in the name: only old ones go
		}
		os.RemoveAll(filepath.Join(dir, "ingest", e.Name()))
	}
	fsutil.ReapLeases(leases)
	return &BlobStore{root: dir, owner: owner}, nil
}

// Path returns the file of blob d (which may not exist).
func (s *BlobStore) Path(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded())
}

// Stat returns the size of blob d, or an error wrapping ErrNotFound.
func (s *BlobStore) Stat(d digest.Digest) (int64, error) {
	if err := d.Validate(); err != nil {
		return 0, err
	}
	fi, err := os.Stat(s.Path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("blob %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Open opens blob d for reading.
func (s *BlobStore) Open(d digest.Digest) (*os.File, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(d))
	if errors.Is(err, fs.ErrNotExist) {
		if ferr := s.Ensure(context.Background(), d); ferr != nil || s.fetcher.Load() == nil {
			if ferr != nil && !errors.Is(ferr, ErrNotFound) {
				return nil, ferr
			}
			return nil, fmt.Errorf("blob %s: %w", d, ErrNotFound)
		}
		f, err = os.Open(s.Path(d))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, ErrNotFound)
	}
	return f, err
}

// Put stores the bytes of r. When expected is not empty the content must
// have that digest, and when size >= 0 that size; otherwise nothing is
// stored. It returns the digest and size of what was stored.
func (s *BlobStore) Put(ctx context.Context, r io.Reader, expected digest.Digest, size int64) (digest.Digest, int64, error) {
	w, err := s.Writer()
	if err != nil {
		return "", 0, err
	}
	defer w.Close()
	n, err := io.Copy(w, ContextReader(ctx, r))
	if err != nil {
		return "", 0, err
	}
	if size >= 0 && n != size {
		return "", 0, fmt.Errorf("blob %s: size %d, expected %d", expected, n, size)
	}
	d, err := w.Commit(expected)
	return d, n, err
}

// Writer starts a streaming write; call Commit to store, Close always.
func (s *BlobStore) Writer() (*BlobWriter, error) {
	f, err := os.CreateTemp(filepath.Join(s.root, "ingest"), "blob-"+s.owner+"-")
	if err != nil {
		return nil, err
	}
	return &BlobWriter{s: s, f: f, h: digest.Canonical.Digester()}, nil
}

// BlobWriter streams one blob into the store, hashing as it writes.
type BlobWriter struct {
	s    *BlobStore
	f    *os.File
	h    digest.Digester
	n    int64
	done bool
}

func (w *BlobWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Hash().Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Digest is the digest of what was written so far.
func (w *BlobWriter) Digest() digest.Digest { return w.h.Digest() }

// Size is the number of bytes written so far.
func (w *BlobWriter) Size() int64 { return w.n }

// Commit verifies the digest (when expected is not empty), syncs and moves
// the blob into place. Committing content that is already stored is not an
// error.
func (w *BlobWriter) Commit(expected digest.Digest) (digest.Digest, error) {
	d := w.h.Digest()
	if expected != "" && d != expected {
		return "", fmt.Errorf("blob digest mismatch: got %s, expected %s", d, expected)
	}
	if err := w.f.Sync(); err != nil {
		return "", err
	}
	if err := w.f.Close(); err != nil {
		return "", err
	}
	w.done = true
	dst := w.s.Path(d)
	// The verified copy replaces what is there, which may be damaged
	// (readers that have it open keep the old file), and is stamped as
	// verified.
	if err := os.Chmod(w.f.Name(), 0o444); err != nil {
		return "", err
	}
	if err := os.Rename(w.f.Name(), dst); err != nil {
		return "", err
	}
	w.s.stampVerified(d)
	return d, nil
}

// Close discards an uncommitted write.
func (w *BlobWriter) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return os.Remove(w.f.Name())
}

// Delete removes blob d.
func (s *BlobStore) Delete(d digest.Digest) error {
	os.Remove(s.stampPath(d))
	err := os.Remove(s.Path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s: %w", d, ErrNotFound)
	}
	return err
}

// ContextReader returns a reader of r that fails with ctx's error once ctx
// is done, so long copies stop on cancellation.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
