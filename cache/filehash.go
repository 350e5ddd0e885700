package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/builderdev/builder/internal/fsutil"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// FileHashCache memoizes the sha256 of files by their stat data (path, size,
// mtime, ctime, inode, device), in memory and, with Save, on disk. A rebuild
// of an unchanged context then costs one stat per file and no reads.
//
// A file whose ctime or mtime is within racyWindow of the moment it was
// hashed is hashed again next time: file timestamps come from a coarse clock,
// so a same-size rewrite right after hashing could keep its timestamps (the
// "racily clean" problem git solves the same way).
//
// It is safe for concurrent use. Two processes saving the same file keep the
// last one's entries, which costs at most some re-hashing.
type FileHashCache struct {
	path string

	mu      sync.RWMutex
	entries map[string]*hashEntry
	dirty   bool
}

type hashEntry struct {
	Size   int64         `json:"s"`
	Mtime  int64         `json:"m"`
	Ctime  int64         `json:"c"`
	Ino    uint64        `json:"i"`
	Dev    uint64        `json:"d"`
	Digest digest.Digest `json:"h"`
	Hashed int64         `json:"t"` // unix ns when hashed
	Used   int64         `json:"u"` // unix seconds of the last Sum
}

type hashFile struct {
	Version int                   `json:"version"`
	Entries map[string]*hashEntry `json:"entries"`
}

// racyWindow is a variable so that tests can avoid waiting it out.
var racyWindow = 2 * time.Second

// hashFileAt is hashFileContent; tests count calls through it.
var hashFileAt = hashFileContent

const (
	hashFileVersion = 1
	// hashEntryTTL drops entries no build used for this long.
	hashEntryTTL = 30 * 24 * time.Hour
)

// NewFileHashCache loads the cache persisted at path. A missing or damaged
// file gives an empty cache (it is only a cache); other read errors are
// returned.
func NewFileHashCache(path string) (*FileHashCache, error) {
	c := &FileHashCache{path: path, entries: map[string]*hashEntry{}}
	b, err := os.ReadFile(path)
	if isNotExist(err) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("file hash cache %s: %w", path, err)
	}
	var f hashFile
	if json.Unmarshal(b, &f) == nil && f.Version == hashFileVersion && f.Entries != nil {
		c.entries = f.Entries
	}
	return c, nil
}

// statKey is the part of a stat that must match for a memoized digest to
// hold.
func statKey(fi os.FileInfo) (hashEntry, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return hashEntry{}, errors.New("no stat data")
	}
	return hashEntry{
		Size:  fi.Size(),
		Mtime: st.Mtim.Nano(),
		Ctime: st.Ctim.Nano(),
		Ino:   st.Ino,
		Dev:   uint64(st.Dev),
	}, nil
}

func (e *hashEntry) sameFile(s hashEntry) bool {
	return e.Size == s.Size && e.Mtime == s.Mtime && e.Ctime == s.Ctime && e.Ino == s.Ino && e.Dev == s.Dev
}

// trusted reports whether the entry's timestamps are old enough, when it was
// hashed, that a later change must have changed them.
func (e *hashEntry) trusted() bool {
	limit := e.Hashed - int64(racyWindow)
	return e.Mtime < limit && e.Ctime < limit
}

// Sum returns the sha256 of the content of the regular file at path, whose
// stat (os.Lstat or os.Stat of path) is fi; nil fi stats path. Use absolute
// paths: entries are keyed by the path as given. A failed stat, open or
// read is the *os.PathError alone (it names the path once), so a caller
// can name the file in its own terms.
func (c *FileHashCache) Sum(path string, fi os.FileInfo) (digest.Digest, error) {
	if fi == nil {
		var err error
		if fi, err = os.Stat(path); err != nil {
			return "", err
		}
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("hashing %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	key, err := statKey(fi)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	c.mu.RLock()
	e := c.entries[path]
	hit := e != nil && e.sameFile(key) && e.trusted()
	var d digest.Digest
	if hit {
		d = e.Digest
	}
	c.mu.RUnlock()
	if hit {
		c.touch(path, e)
		return d, nil
	}

	hashed := time.Now().UnixNano()
	d, stable, err := hashFileAt(path, key)
	if err != nil {
		return "", err
	}
	if stable {
		ne := key
		ne.Digest, ne.Hashed, ne.Used = d, hashed, time.Now().Unix()
		c.mu.Lock()
		c.entries[path] = &ne
		c.dirty = true
		c.mu.Unlock()
	}
	return d, nil
}

// touch marks e used today, so Save keeps it.
func (c *FileHashCache) touch(path string, e *hashEntry) {
	today := time.Now().Unix()
	c.mu.RLock()
	fresh := today-e.Used < 24*3600
	c.mu.RUnlock()
	if fresh {
		return
	}
	c.mu.Lock()
	if c.entries[path] == e {
		e.Used = today
		c.dirty = true
	}
	c.mu.Unlock()
}

// hashFileContent hashes path; stable is false when the file changed while it was
// read (or is not the file stat'ed), so the digest must not be memoized.
//
// It reads with one descriptor (no os.File: no poller registration) and a
// pooled 1 MiB buffer, so a small file costs open, read, fstat and close.
func hashFileContent(path string, want hashEntry) (d digest.Digest, stable bool, err error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return "", false, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	bp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bp)
	h := digest.Canonical.Digester()
	hw := h.Hash()
	for {
		n, err := unix.Read(fd, *bp)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", false, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			break
		}
		hw.Write((*bp)[:n])
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return h.Digest(), false, nil
	}
	after := hashEntry{Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Ino: st.Ino, Dev: uint64(st.Dev)}
	return h.Digest(), after.sameFile(want), nil
}

var hashBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// Len is the number of memoized files.
func (c *FileHashCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// Save writes the cache to its file atomically, when anything changed since
// it was loaded or saved. Entries unused for 30 days are dropped.
func (c *FileHashCache) Save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	cutoff := time.Now().Add(-hashEntryTTL).Unix()
	for p, e := range c.entries {
		if e.Used < cutoff {
			delete(c.entries, p)
		}
	}
	b, err := json.Marshal(hashFile{Version: hashFileVersion, Entries: c.entries})
	if err != nil {
		return fmt.Errorf("file hash cache %s: %w", c.path, err)
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("file hash cache %s: %w", c.path, err)
	}
	if err := fsutil.WriteFileAtomic(c.path, 0o600, b); err != nil {
		return fmt.Errorf("file hash cache %s: %w", c.path, err)
	}
	c.dirty = false
	return nil
}
