package cache

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/builderdev/builder/internal/fsutil"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// keyRecord is one line of the key log.
type keyRecord struct {
	Key  digest.Digest `json:"k"`
	ID   string        `json:"id,omitempty"`
	Del  bool          `json:"del,omitempty"`
	Info *KeyInfo      `json:"info,omitempty"`
	Time int64         `json:"t,omitempty"` // unix nanoseconds
	// Use marks a line that only records a use of Key at Time (a cache
	// hit), for the garbage collector's last-use times.
	Use bool `json:"use,omitempty"`
	// Used is the last use kept through compaction.
	Used int64 `json:"u,omitempty"`
}

type keyEntry struct {
	id   string
	info *KeyInfo
	time int64
	used int64 // last use (unix nanoseconds), 0 = only saved
}

// keyStore is the key log: an append-only file of JSON lines, each a
// keyRecord. The in-memory map mirrors the file and is refreshed from it
// (only the new bytes) before every lookup, so writes of another process are
// seen. Writers hold an exclusive flock on a separate lock file, cut off a
// torn last line and append one whole line (not synced: see append).
// Compaction writes a new log and renames it over the old one; readers
// notice the new inode.
type keyStore struct {
	path string
	lock *os.File

	mu      sync.Mutex
	f       *os.File // read handle of the current log
	off     int64    // bytes of f consumed (always after a '\n')
	entries map[digest.Digest]*keyEntry
}

func openKeyStore(dir string) (*keyStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("key store %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("key store %s: %w", dir, err)
	}
	k := &keyStore{path: filepath.Join(dir, "log"), lock: lock}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.refresh(); err != nil {
		lock.Close()
		return nil, err
	}
	return k, nil
}

func (k *keyStore) close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.f != nil {
		k.f.Close()
		k.f = nil
	}
	return k.lock.Close()
}

// refresh brings entries up to date with the log file. k.mu is held.
func (k *keyStore) refresh() error {
	fi, err := os.Stat(k.path)
	if errors.Is(err, fs.ErrNotExist) {
		// Not written yet.
		if k.f != nil {
			k.f.Close()
			k.f = nil
		}
		k.off = 0
		k.entries = map[digest.Digest]*keyEntry{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("key store %s: %w", k.path, err)
	}
	if k.f != nil {
		cur, err := k.f.Stat()
		if err != nil || !os.SameFile(cur, fi) {
			// Compacted by someone: start over from the new file.
			k.f.Close()
			k.f = nil
		}
	}
	if k.f == nil {
		f, err := os.Open(k.path)
		if err != nil {
			return fmt.Errorf("key store %s: %w", k.path, err)
		}
		k.f, k.off, k.entries = f, 0, map[digest.Digest]*keyEntry{}
		if fi, err = f.Stat(); err != nil {
			return fmt.Errorf("key store %s: %w", k.path, err)
		}
	}
	if fi.Size() <= k.off {
		return nil
	}
	data := make([]byte, fi.Size()-k.off)
	n, err := k.f.ReadAt(data, k.off)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("key store %s: %w", k.path, err)
	}
	data = data[:n]
	end := bytes.LastIndexByte(data, '\n')
	if end < 0 {
		return nil // only a line being written (or a torn one)
	}
	sc := bufio.NewScanner(bytes.NewReader(data[:end+1]))
	sc.Buffer(make([]byte, 64*1024), 64<<20)
	for sc.Scan() {
		var r keyRecord
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Key == "" {
			continue // a damaged line costs one cache entry, not the store
		}
		k.apply(r)
	}
	k.off += int64(end + 1)
	return nil
}

func (k *keyStore) apply(r keyRecord) {
	if r.Del {
		delete(k.entries, r.Key)
		return
	}
	if r.Use {
		if e := k.entries[r.Key]; e != nil && r.Time > e.used {
			e.used = r.Time
		}
		return
	}
	k.entries[r.Key] = &keyEntry{id: r.ID, info: r.Info, time: r.Time, used: r.Used}
}

// recentlyUsed returns which of keys were saved or used after since (unix
// nanoseconds).
func (k *keyStore) recentlyUsed(keys []digest.Digest, since int64) map[digest.Digest]bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refresh()
	out := map[digest.Digest]bool{}
	for _, key := range keys {
		if e := k.entries[key]; e != nil && max(e.time, e.used) > since {
			out[key] = true
		}
	}
	return out
}

func (k *keyStore) load(key digest.Digest) (string, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.refresh(); err != nil {
		return "", false, err
	}
	e, ok := k.entries[key]
	if !ok {
		return "", false, nil
	}
	return e.id, true, nil
}

// flock runs fn holding the cross-process write lock. k.mu is held.
func (k *keyStore) flock(fn func() error) error {
	for {
		err := unix.Flock(int(k.lock.Fd()), unix.LOCK_EX)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("key store: lock %s: %w", k.lock.Name(), err)
		}
	}
	defer unix.Flock(int(k.lock.Fd()), unix.LOCK_UN)
	return fn()
}

// append writes records to the log as whole lines.
func (k *keyStore) append(recs ...keyRecord) error {
	var buf bytes.Buffer
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("key store: encoding record for %s: %w", r.Key, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	err := k.flock(func() error {
		f, err := os.OpenFile(k.path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := cutTornTail(f); err != nil {
			return err
		}
		// O_APPEND is not needed: we hold the lock and seek to the end.
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			return err
		}
		// Not synced: a line a crash loses or tears costs one cache
		// entry (damaged lines are skipped), never the store.
		_, err = f.Write(buf.Bytes())
		return err
	})
	if err != nil {
		return fmt.Errorf("key store %s: %w", k.path, err)
	}
	return k.refresh()
}

// cutTornTail truncates f after its last newline: what follows is a line a
// crashed writer did not finish.
func cutTornTail(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	// Scan back for the last newline, a block at a time.
	const block = 4096
	end := size
	for end > 0 {
		start := max(end-block, 0)
		buf := make([]byte, end-start)
		if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			return f.Truncate(start + int64(i) + 1)
		}
		end = start
	}
	return f.Truncate(0)
}

// compact rewrites the log without the keys for which drop returns true and
// returns how many were dropped.
func (k *keyStore) compact(drop func(key digest.Digest, id string) bool) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	removed := 0
	err := k.flock(func() error {
		if err := k.refresh(); err != nil {
			return err
		}
		return fsutil.WriteFileAtomicFunc(k.path, 0o600, func(f io.Writer) error {
			w := bufio.NewWriter(f)
			for key, e := range k.entries {
				if drop(key, e.id) {
					removed++
					continue
				}
				b, err := json.Marshal(keyRecord{Key: key, ID: e.id, Info: e.info, Time: e.time, Used: e.used})
				if err != nil {
					return err
				}
				w.Write(b)
				w.WriteByte('\n')
			}
			return w.Flush()
		})
	})
	if err != nil {
		return 0, fmt.Errorf("key store %s: compacting: %w", k.path, err)
	}
	return removed, k.refresh()
}

// explain finds the stored key that best matches the step of m and says
// what differs. See Store.ExplainMiss.
func (k *keyStore) explain(m KeyInfo) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.refresh(); err != nil {
		return "cache miss: " + err.Error()
	}
	if _, ok := k.entries[m.Key]; ok {
		return "cache miss: the cached result is gone"
	}
	return explainFrom(m, func(yield func(info *KeyInfo, t int64)) {
		for _, e := range k.entries {
			if e.info != nil {
				yield(e.info, e.time)
			}
		}
	})
}

// ExplainMissAmong explains a miss of m as Store.ExplainMiss does, against
// the keys infos (e.g. those of an imported remote cache) instead of the
// store's; infos later in the list count as newer.
func ExplainMissAmong(m KeyInfo, infos []KeyInfo) string {
	return explainFrom(m, func(yield func(info *KeyInfo, t int64)) {
		for i := range infos {
			yield(&infos[i], int64(i))
		}
	})
}

// explainFrom finds among the keys each yields the one that best matches
// the step of m and says what differs.
func explainFrom(m KeyInfo, each func(yield func(info *KeyInfo, t int64))) string {
	type cand struct {
		info *KeyInfo
		diff int
		time int64
	}
	// consider keeps in c the entry with the fewest differing inputs, then
	// the newest.
	consider := func(c *cand, info *KeyInfo, t int64) {
		d := differing(m, *info)
		if c.info == nil || d < c.diff || (d == c.diff && t > c.time) {
			*c = cand{info, d, t}
		}
	}
	var byOp, byName, byInputs cand
	each(func(info *KeyInfo, t int64) {
		switch {
		case info.Op == m.Op:
			consider(&byOp, info, t)
		case m.Name != "" && info.Name == m.Name:
			consider(&byName, info, t)
		case len(m.Inputs) > 0 && differing(m, *info) == 0:
			consider(&byInputs, info, t)
		}
	})
	switch {
	case byOp.info != nil:
		return explainDiff(m, *byOp.info, true)
	case byName.info != nil:
		return explainDiff(m, *byName.info, false)
	case byInputs.info != nil:
		// The step built on them may be this one before an edit, or
		// another Dockerfile's on the same base: say what is known.
		if byInputs.info.Name != "" {
			return fmt.Sprintf("cache miss: this step is new on these inputs (the last step built on them was %q)", byInputs.info.Name)
		}
		return "cache miss: this step is new on these inputs"
	}
	return NotBuiltBefore
}

// NotBuiltBefore is the explanation of a miss of a step no stored key
// resembles.
const NotBuiltBefore = "cache miss: this step was not built before"

func now() int64 { return time.Now().UnixNano() }
