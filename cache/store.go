package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/builderdev/builder/internal/fsutil"
	digest "github.com/opencontainers/go-digest"
)

// Store is the persistent cache under one root directory: blobs, cache keys
// and metadata records. It is safe for concurrent use by goroutines and by
// several processes sharing the directory.
type Store struct {
	dir   string
	blobs *BlobStore
	keys  *keyStore
	meta  *MetaStore
}

// Open opens (creating) the store at dir.
func Open(dir string) (*Store, error) {
	blobs, err := OpenBlobStore(filepath.Join(dir, "content"))
	if err != nil {
		return nil, fmt.Errorf("cache %s: %w", dir, err)
	}
	keys, err := openKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		return nil, fmt.Errorf("cache %s: %w", dir, err)
	}
	meta, err := OpenMetaStore(filepath.Join(dir, "meta"))
	if err != nil {
		keys.close()
		return nil, fmt.Errorf("cache %s: %w", dir, err)
	}
	return &Store{dir: dir, blobs: blobs, keys: keys, meta: meta}, nil
}

// Dir is the root directory of the store.
func (s *Store) Dir() string { return s.dir }

// Blobs returns the blob store (ROOT/content).
func (s *Store) Blobs() *BlobStore { return s.blobs }

// Metadata returns the metadata record store (ROOT/meta).
func (s *Store) Metadata() *MetaStore { return s.meta }

// Close releases the store's files.
func (s *Store) Close() error { return s.keys.close() }

// Load returns the result ID stored for key; ok is false on a miss.
func (s *Store) Load(key digest.Digest) (id string, ok bool, err error) {
	return s.keys.load(key)
}

// Save records that key produced the result id.
func (s *Store) Save(key digest.Digest, id string) error {
	if err := key.Validate(); err != nil {
		return fmt.Errorf("cache: saving key %q: %w", key, err)
	}
	return s.keys.append(keyRecord{Key: key, ID: id, Time: now()})
}

// SaveKey is Save that also records what the key was computed from, for
// ExplainMiss. info.Key is the key.
func (s *Store) SaveKey(info KeyInfo, id string) error {
	if err := info.Key.Validate(); err != nil {
		return fmt.Errorf("cache: saving key %q: %w", info.Key, err)
	}
	return s.keys.append(keyRecord{Key: info.Key, ID: id, Info: &info, Time: now()})
}

// LockKey takes the cross-process lock of key (an flock on
// keys/locks/<hex>), waiting for it or ctx: see solver.KeyLocker. The lock
// files stay (removing one while a process waits on it would break the
// lock); prune, which runs alone, removes them.
func (s *Store) LockKey(ctx context.Context, key digest.Digest) (func(), error) {
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("cache: locking key %q: %w", key, err)
	}
	dir := filepath.Join(s.dir, "keys", "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return fsutil.LockContext(ctx, filepath.Join(dir, key.Encoded()))
}

// RemoveKeyLocks removes the lock files of LockKey. Only call it while no
// other process uses the store (prune holds the root exclusively).
func (s *Store) RemoveKeyLocks() error {
	return os.RemoveAll(filepath.Join(s.dir, "keys", "locks"))
}

// touchGranularity is how recent a recorded use may be for Touch to skip
// recording another: the log grows by one line per key and period, not per
// build, however often a CI loop rebuilds.
const touchGranularity = 10 * time.Minute

// Touch records that keys were used now (the steps of a build, cached or
// not), in one append: the garbage collector removes the least recently
// used first, and prune --filter until= counts from the last use (to
// within touchGranularity).
func (s *Store) Touch(keys []digest.Digest) error {
	t := now()
	recent := s.keys.recentlyUsed(keys, t-int64(touchGranularity))
	recs := make([]keyRecord, 0, len(keys))
	for _, k := range keys {
		if k.Validate() == nil && !recent[k] {
			recs = append(recs, keyRecord{Key: k, Use: true, Time: t})
		}
	}
	if len(recs) == 0 {
		return nil
	}
	return s.keys.append(recs...)
}

// Delete removes the record of key; a missing key is not an error.
func (s *Store) Delete(key digest.Digest) error {
	return s.keys.append(keyRecord{Key: key, Del: true, Time: now()})
}

// ExplainMiss says why the key described by m missed, as one line starting
// with "cache miss: ". It looks for the stored key that the same step made
// before: first one with the same op digest (the step is unchanged, so an
// input must differ: "cache miss: input 1 (COPY app.go) changed"), then one
// with the same name (an input or the step changed), then one with exactly
// the same inputs (a new step on them: this one edited, or another
// Dockerfile's on the same base). Among several it
// takes the one with the fewest differing inputs, then the newest.
func (s *Store) ExplainMiss(m KeyInfo) string { return s.keys.explain(m) }

// Prune removes the key records whose result IDs keep rejects (their results
// are gone) and compacts the key log. It returns how many it removed.
func (s *Store) Prune(keep func(id string) bool) (int, error) {
	return s.keys.compact(func(_ digest.Digest, id string) bool { return !keep(id) })
}

// Keys calls fn for every stored key and its result ID, in no order. The
// store is not locked while fn runs.
func (s *Store) Keys(fn func(key digest.Digest, id string) error) error {
	entries, err := s.Entries()
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := fn(e.Key, e.ID); err != nil {
			return err
		}
	}
	return nil
}

// isNotExist reports a missing file.
func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
