package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/builderdev/builder/snapshot/fsutil"
)

// driver is what differs between overlay and native; the store does the
// bookkeeping around it.
type driver interface {
	name() string
	// create fills the new snapshot dir of s (fs/ and work/ exist) for a
	// snapshot of kind on top of chain (nearest parent first).
	create(ctx context.Context, s *snap, chain []*snap) error
	mounts(s *snap, chain []*snap) []Mount
	diff(ctx context.Context, s *snap, chain []*snap, w io.Writer) error
	apply(ctx context.Context, s *snap, chain []*snap, r io.Reader) error
}

// metaFile is the persisted form of one snapshot.
type metaFile struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Parent  string    `json:"parent,omitempty"` // parent id
	Kind    string    `json:"kind"`
	Created time.Time `json:"created"`
}

// snap is the in-memory record of one snapshot.
type snap struct {
	id      string
	name    string
	parent  *snap
	kind    Kind
	created time.Time
	dir     string // <root>/snapshots/<id>

	ready    bool // false while being created
	children int  // snapshots (any kind, ready or not) with this parent
	users    int  // running Diff/Apply/create on this snapshot
}

func (s *snap) fsDir() string   { return filepath.Join(s.dir, "fs") }
func (s *snap) workDir() string { return filepath.Join(s.dir, "work") }

// String returns "active", "view" or "committed".
func (k Kind) String() string {
	switch k {
	case KindActive:
		return "active"
	case KindView:
		return "view"
	case KindCommitted:
		return "committed"
	}
	return "unknown"
}

func parseKind(s string) (Kind, error) {
	switch s {
	case "active":
		return KindActive, nil
	case "view":
		return KindView, nil
	case "committed":
		return KindCommitted, nil
	}
	return 0, fmt.Errorf("unknown snapshot kind %q", s)
}

// store implements Snapshotter over a driver.
type store struct {
	root   string
	drv    driver
	mu     sync.Mutex
	byName map[string]*snap
	nextID int
	closed bool
}

func validName(n string) error {
	if n == "" {
		return errors.New("empty snapshot name")
	}
	if strings.ContainsAny(n, "/\x00") {
		return fmt.Errorf("snapshot name %q contains '/' or NUL", n)
	}
	return nil
}

// openStore loads (or initialises) the metadata under root for drv.
func openStore(root string, drv driver) (*store, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot root %s: %w", root, err)
	}
	for _, d := range []string{root, filepath.Join(root, "snapshots"), filepath.Join(root, "trash")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating snapshot dir %s: %w", d, err)
		}
	}
	// The driver of a root is fixed at first use.
	df := filepath.Join(root, "driver")
	if b, err := os.ReadFile(df); err == nil {
		if got := strings.TrimSpace(string(b)); got != drv.name() {
			return nil, fmt.Errorf("snapshot root %s was created by the %s snapshotter, not %s", root, got, drv.name())
		}
	} else if errors.Is(err, os.ErrNotExist) {
		if err := fsutil.WriteFileAtomic(df, 0o600, []byte(drv.name()+"\n")); err != nil {
			return nil, err
		}
	} else {
		return nil, fmt.Errorf("reading %s: %w", df, err)
	}
	// Finish removals interrupted by a crash.
	trash := filepath.Join(root, "trash")
	if ents, err := os.ReadDir(trash); err == nil {
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(trash, e.Name())); err != nil {
				return nil, fmt.Errorf("cleaning %s: %w", trash, err)
			}
		}
	}
	st := &store{root: root, drv: drv, byName: map[string]*snap{}, nextID: 1}
	if err := st.load(); err != nil {
		return nil, err
	}
	return st, nil
}

func (st *store) load() error {
	dir := filepath.Join(st.root, "snapshots")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	byID := map[string]*snap{}
	parents := map[*snap]string{}
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n >= st.nextID {
			st.nextID = n + 1
		}
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(filepath.Join(p, "meta.json"))
		if errors.Is(err, os.ErrNotExist) {
			// Creation was interrupted before the metadata was written.
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("removing incomplete snapshot %s: %w", p, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("reading snapshot metadata %s: %w", p, err)
		}
		var m metaFile
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("parsing snapshot metadata %s: %w", p, err)
		}
		k, err := parseKind(m.Kind)
		if err != nil {
			return fmt.Errorf("snapshot metadata %s: %w", p, err)
		}
		s := &snap{id: m.ID, name: m.Name, kind: k, created: m.Created, dir: p, ready: true}
		byID[m.ID] = s
		parents[s] = m.Parent
		st.byName[m.Name] = s
	}
	for s, pid := range parents {
		if pid == "" {
			continue
		}
		p, ok := byID[pid]
		if !ok {
			return fmt.Errorf("snapshot %q: parent id %s: %w", s.name, pid, ErrNotFound)
		}
		s.parent = p
		p.children++
	}
	return nil
}

func (st *store) writeMeta(s *snap) error {
	m := metaFile{ID: s.id, Name: s.name, Kind: s.kind.String(), Created: s.created}
	if s.parent != nil {
		m.Parent = s.parent.id
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(s.dir, "meta.json"), 0o600, b)
}

func chainOf(s *snap) []*snap {
	var c []*snap
	for p := s.parent; p != nil; p = p.parent {
		c = append(c, p)
	}
	return c
}

// get returns the ready snapshot key; st.mu must be held.
func (st *store) get(key string) (*snap, error) {
	if st.closed {
		return nil, errors.New("snapshotter is closed")
	}
	s, ok := st.byName[key]
	if !ok || !s.ready {
		return nil, fmt.Errorf("snapshot %q: %w", key, ErrNotFound)
	}
	return s, nil
}

func (st *store) Prepare(ctx context.Context, key, parent string) ([]Mount, error) {
	return st.create(ctx, key, parent, KindActive)
}

func (st *store) View(ctx context.Context, key, parent string) ([]Mount, error) {
	return st.create(ctx, key, parent, KindView)
}

func (st *store) create(ctx context.Context, key, parent string, kind Kind) ([]Mount, error) {
	if err := validName(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil, errors.New("snapshotter is closed")
	}
	if _, ok := st.byName[key]; ok {
		st.mu.Unlock()
		return nil, fmt.Errorf("snapshot %q: %w", key, ErrAlreadyExists)
	}
	var p *snap
	if parent != "" {
		var err error
		if p, err = st.get(parent); err != nil {
			st.mu.Unlock()
			return nil, fmt.Errorf("parent of %q: %w", key, err)
		}
		if p.kind != KindCommitted {
			st.mu.Unlock()
			return nil, fmt.Errorf("parent %q of %q is %s, not committed", parent, key, p.kind)
		}
	}
	var dir, id string
	for {
		id = strconv.Itoa(st.nextID)
		st.nextID++
		dir = filepath.Join(st.root, "snapshots", id)
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) {
			st.mu.Unlock()
			return nil, fmt.Errorf("creating snapshot %q: %w", key, err)
		}
	}
	s := &snap{id: id, name: key, parent: p, kind: kind, created: time.Now().UTC(), dir: dir, users: 1}
	st.byName[key] = s
	if p != nil {
		p.children++
	}
	st.mu.Unlock()

	chain := chainOf(s)
	err := func() error {
		for _, d := range []string{s.fsDir(), s.workDir()} {
			if err := os.Mkdir(d, 0o755); err != nil {
				return err
			}
		}
		if err := st.drv.create(ctx, s, chain); err != nil {
			return err
		}
		return st.writeMeta(s)
	}()

	st.mu.Lock()
	defer st.mu.Unlock()
	s.users--
	if err != nil {
		delete(st.byName, key)
		if p != nil {
			p.children--
		}
		os.RemoveAll(dir)
		return nil, fmt.Errorf("creating snapshot %q: %w", key, err)
	}
	s.ready = true
	return st.drv.mounts(s, chain), nil
}

func (st *store) Mounts(ctx context.Context, key string) ([]Mount, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, err := st.get(key)
	if err != nil {
		return nil, err
	}
	if s.kind == KindCommitted {
		return nil, fmt.Errorf("snapshot %q is committed; mounts exist only for active snapshots and views", key)
	}
	return st.drv.mounts(s, chainOf(s)), nil
}

func (st *store) Commit(ctx context.Context, name, key string) error {
	if err := validName(name); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s, err := st.get(key)
	if err != nil {
		return err
	}
	if s.kind != KindActive {
		return fmt.Errorf("committing %q: snapshot is %s, not active", key, s.kind)
	}
	if s.users > 0 {
		return fmt.Errorf("committing %q: snapshot is in use", key)
	}
	if _, ok := st.byName[name]; ok {
		return fmt.Errorf("committing %q as %q: %w", key, name, ErrAlreadyExists)
	}
	old := *s
	s.name, s.kind = name, KindCommitted
	if err := st.writeMeta(s); err != nil {
		s.name, s.kind = old.name, old.kind
		return fmt.Errorf("committing %q as %q: %w", key, name, err)
	}
	delete(st.byName, key)
	st.byName[name] = s
	return nil
}

func (st *store) Remove(ctx context.Context, key string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, err := st.get(key)
	if err != nil {
		return err
	}
	if s.children > 0 {
		return fmt.Errorf("removing %q: snapshot has %d children", key, s.children)
	}
	if s.users > 0 {
		return fmt.Errorf("removing %q: snapshot is in use", key)
	}
	// Renaming into trash/ removes the metadata atomically; the tree is
	// deleted afterwards (and at the next open if we crash).
	trash := filepath.Join(st.root, "trash", s.id)
	if err := os.Rename(s.dir, trash); err != nil {
		return fmt.Errorf("removing %q: %w", key, err)
	}
	delete(st.byName, key)
	if s.parent != nil {
		s.parent.children--
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("removing %q: deleting %s: %w", key, trash, err)
	}
	return nil
}

func (st *store) info(s *snap) Info {
	in := Info{Name: s.name, Kind: s.kind, Created: s.created}
	if s.parent != nil {
		in.Parent = s.parent.name
	}
	return in
}

func (st *store) Stat(ctx context.Context, key string) (Info, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, err := st.get(key)
	if err != nil {
		return Info{}, err
	}
	return st.info(s), nil
}

func (st *store) Walk(ctx context.Context, fn func(Info) error) error {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return errors.New("snapshotter is closed")
	}
	var infos []Info
	for _, s := range st.byName {
		if s.ready {
			infos = append(infos, st.info(s))
		}
	}
	st.mu.Unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	for _, in := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}

// acquire marks key in use (so it is neither removed nor committed under a
// running Diff or Apply) and returns it with its parent chain.
func (st *store) acquire(key string, kind Kind) (*snap, []*snap, func(), error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, err := st.get(key)
	if err != nil {
		return nil, nil, nil, err
	}
	if s.kind != kind {
		return nil, nil, nil, fmt.Errorf("snapshot %q is %s, not %s", key, s.kind, kind)
	}
	if kind == KindActive && s.users > 0 {
		return nil, nil, nil, fmt.Errorf("snapshot %q is in use", key)
	}
	s.users++
	return s, chainOf(s), func() {
		st.mu.Lock()
		s.users--
		st.mu.Unlock()
	}, nil
}

func (st *store) Diff(ctx context.Context, name string, w io.Writer) error {
	s, chain, release, err := st.acquire(name, KindCommitted)
	if err != nil {
		return fmt.Errorf("diff: %w", err)
	}
	defer release()
	if err := st.drv.diff(ctx, s, chain, w); err != nil {
		return fmt.Errorf("diff of snapshot %q: %w", name, err)
	}
	return nil
}

func (st *store) Apply(ctx context.Context, key string, r io.Reader) error {
	s, chain, release, err := st.acquire(key, KindActive)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	defer release()
	if err := st.drv.apply(ctx, s, chain, r); err != nil {
		return fmt.Errorf("applying layer to snapshot %q: %w", key, err)
	}
	return nil
}

func (st *store) Close() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.closed = true
	return nil
}
