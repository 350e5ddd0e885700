package cache

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/builderdev/builder/internal/fsutil"
)

// MetaStore keeps small JSON records by ID, one file each, written
// atomically (temp file, fsync, rename): a reader sees the old record or the
// new one, never a mix, also across processes. IDs may be any non-empty
// string; they are escaped into file names.
type MetaStore struct {
	dir string
}

// tmpPrefix marks files being written; Walk skips them.
const tmpPrefix = ".tmp-"

// maxNameLen is the longest file name most filesystems take.
const maxNameLen = 255

// OpenMetaStore opens (creating) the record store at dir and removes temp
// files that interrupted writes left more than an hour ago.
func OpenMetaStore(dir string) (*MetaStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("metadata store %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("metadata store %s: %w", dir, err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		// Another process may be writing it right now: only old ones go.
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return &MetaStore{dir: dir}, nil
}

func (m *MetaStore) path(id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("metadata store %s: empty id", m.dir)
	}
	name := escapeID(id) + ".json"
	if len(name) > maxNameLen {
		return "", fmt.Errorf("metadata store %s: id %.40q...: too long", m.dir, id)
	}
	return filepath.Join(m.dir, name), nil
}

// Put stores v (encoded as JSON) under id, replacing any earlier record.
func (m *MetaStore) Put(id string, v any) error {
	p, err := m.path(id)
	if err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("metadata %q: encoding: %w", id, err)
	}
	// Renamed into place but not synced: a record a power loss loses
	// (or tears: the seal tells) is a cache miss. Syncing it would not
	// make the result safe from one either, since the snapshot it names
	// is not synced (see package snapshot); the fsync cost a millisecond
	// or more on every step's path.
	if err := fsutil.ReplaceFile(p, 0o600, fsutil.Seal(b)); err != nil {
		return fmt.Errorf("metadata %q: %w", id, err)
	}
	return nil
}

// Get decodes the record id into v; a missing or undecodable record is an
// error wrapping ErrNotFound.
func (m *MetaStore) Get(id string, v any) error {
	p, err := m.path(id)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(p)
	if isNotExist(err) {
		return fmt.Errorf("metadata %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("metadata %q: %w", id, err)
	}
	if b, err = fsutil.Unseal(b); err != nil {
		return fmt.Errorf("metadata %q: damaged record %s (%v): %w", id, p, err, ErrNotFound)
	}
	if err := json.Unmarshal(b, v); err != nil {
		// Damaged: absent, so that what depends on it is made again.
		return fmt.Errorf("metadata %q: damaged record %s (%v): %w", id, p, err, ErrNotFound)
	}
	return nil
}

// Delete removes record id; a missing record is an error wrapping
// ErrNotFound.
func (m *MetaStore) Delete(id string) error {
	p, err := m.path(id)
	if err != nil {
		return err
	}
	err = os.Remove(p)
	if isNotExist(err) {
		return fmt.Errorf("metadata %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("metadata %q: %w", id, err)
	}
	return nil
}

// DeleteDamaged removes the records that are damaged (their checksum or
// JSON is broken) and returns their IDs.
func (m *MetaStore) DeleteDamaged() ([]string, error) {
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, fmt.Errorf("metadata store %s: %w", m.dir, err)
	}
	var gone []string
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, tmpPrefix) || !strings.HasSuffix(name, ".json") {
			continue
		}
		p := filepath.Join(m.dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if b, err = fsutil.Unseal(b); err == nil && json.Valid(b) {
			continue
		}
		if err := os.Remove(p); err == nil {
			id, _ := unescapeID(strings.TrimSuffix(name, ".json"))
			gone = append(gone, id)
		}
	}
	return gone, nil
}

// Walk calls fn for every record with its raw JSON, in the order of the
// escaped IDs. A record deleted while walking, or damaged, is skipped. An error from fn
// stops the walk and is returned.
func (m *MetaStore) Walk(fn func(id string, data json.RawMessage) error) error {
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		return fmt.Errorf("metadata store %s: %w", m.dir, err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, tmpPrefix) || !strings.HasSuffix(name, ".json") || !e.Type().IsRegular() {
			continue
		}
		id, ok := unescapeID(strings.TrimSuffix(name, ".json"))
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(m.dir, name))
		if isNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("metadata %q: %w", id, err)
		}
		if b, err = fsutil.Unseal(b); err != nil || !json.Valid(b) {
			continue // damaged: absent (DeleteDamaged removes it)
		}
		if err := fn(id, json.RawMessage(b)); err != nil {
			return err
		}
	}
	return nil
}

// escapeID maps an ID to a file name: letters, digits, '-', '_' and '.'
// stay (a leading '.' does not), everything else becomes %XX.
func escapeID(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		safe := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || (c == '.' && i > 0)
		if safe {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func unescapeID(name string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if name[i] != '%' {
			b.WriteByte(name[i])
			continue
		}
		if i+2 >= len(name) {
			return "", false
		}
		c, err := strconv.ParseUint(name[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(c))
		i += 2
	}
	return b.String(), true
}
