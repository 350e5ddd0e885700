package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops/internal/fileop"
)

// mountState is the worker's bookkeeping of cache mounts shared by the
// concurrent steps of a build: which private cache dirs are in use and the
// per-id locks of sharing=locked.
type mountState struct {
	mu sync.Mutex
	// busy marks private cache dirs (by dir name) in use.
	busy map[string]bool
	// locks are sharing=locked semaphores by cache dir name.
	locks map[string]chan struct{}
}

// lock takes the locked-sharing semaphore of name, waiting for ctx.
func (s *mountState) lock(ctx context.Context, name string) (func(), error) {
	s.mu.Lock()
	if s.locks == nil {
		s.locks = map[string]chan struct{}{}
	}
	ch, ok := s.locks[name]
	if !ok {
		ch = make(chan struct{}, 1)
		s.locks[name] = ch
	}
	s.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// claim returns the first of name, name-1, name-2, ... not in use by
// another private user, and marks it in use.
func (s *mountState) claim(name string) (string, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy == nil {
		s.busy = map[string]bool{}
	}
	n := name
	for i := 1; s.busy[n]; i++ {
		n = fmt.Sprintf("%s-%d", name, i)
	}
	s.busy[n] = true
	return n, func() {
		s.mu.Lock()
		delete(s.busy, n)
		s.mu.Unlock()
	}
}

// mountSetup is what one llb mount adds to a sandbox.
type mountSetup struct {
	mounts []executor.Mount
	// env is added where the step does not set the key (SSH_AUTH_SOCK).
	env []string
	// secretEnv replaces the step's value of the key: a secret delivered
	// as an env var wins over an ENV of the same name, as in BuildKit.
	secretEnv []string
}

// mount turns a non-root llb mount into sandbox mounts and environment
// variables. cleanup (possibly set also on error) undoes what was prepared.
func (o *execOp) mount(ctx context.Context, m llb.Mount, inputs []solver.Result) (mountSetup, func(), error) {
	var in solver.Result
	if m.Input >= 0 {
		if m.Input >= len(inputs) {
			return mountSetup{}, nil, fmt.Errorf("mount %s: input %d out of range", m.Dest, m.Input)
		}
		in = inputs[m.Input]
	}
	switch m.Type {
	case llb.MountBind:
		ms, cleanup, err := o.w.bindMount(ctx, m, in)
		return mountSetup{mounts: ms}, cleanup, err
	case llb.MountTmpfs:
		opts := []string{"nosuid", "nodev", "mode=1777"}
		if m.TmpfsSize > 0 {
			opts = append(opts, fmt.Sprintf("size=%d", m.TmpfsSize))
		}
		return mountSetup{mounts: []executor.Mount{{Type: "tmpfs", Source: "tmpfs", Target: m.Dest, Options: opts}}}, nil, nil
	case llb.MountCache:
		dir, cleanup, err := o.w.acquireCache(ctx, m, in)
		if err != nil {
			return mountSetup{}, cleanup, err
		}
		if dir, err = cacheSubdir(dir, m); err != nil {
			return mountSetup{}, cleanup, err
		}
		opts := []string{"rbind"}
		if m.Readonly {
			opts = append(opts, "ro")
		}
		return mountSetup{mounts: []executor.Mount{{Type: "bind", Source: dir, Target: m.Dest, Options: opts}}}, cleanup, nil
	case llb.MountSecret:
		return o.w.secretMount(ctx, m)
	case llb.MountSSH:
		return o.w.sshMount(ctx, m)
	default:
		return mountSetup{}, nil, fmt.Errorf("mount %s: unknown mount type %q", m.Dest, m.Type)
	}
}

// cacheSubdir is the directory of a cache mount's source= inside the cache
// dir, resolved inside it: a symlink in the cache never leads out of it
// (BuildKit's testCacheMountSourceEscape). As in BuildKit, the source must
// exist in the cache.
func cacheSubdir(dir string, m llb.Mount) (string, error) {
	sel := selectorPath(m.Selector)
	if sel == "/" {
		return dir, nil
	}
	p, err := fsutil.ResolveInRoot(dir, sel)
	if err != nil {
		return "", fmt.Errorf("cache mount %s: source %s: %w", m.Dest, sel, hidePath(err))
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("cache mount %s: source %s does not exist in the cache", m.Dest, sel)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("cache mount %s: source %s in the cache is not a directory", m.Dest, sel)
	}
	return p, nil
}

// hidePath drops the host path of an *os.PathError: the message names the
// path as the user wrote it.
func hidePath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// selectorPath is the cleaned selector, "/" for the whole tree.
func selectorPath(sel string) string {
	return path.Clean("/" + sel)
}

// bindMount mounts (a subtree of) a local context or a stage at m.Dest.
//
// The fast paths bind the tree itself: a read-only mount of a local context
// without .dockerignore patterns (the selector resolved inside the context,
// so a symlink never leads out of it), and a whole stage (a snapshot view,
// or an active snapshot for rw, thrown away afterwards). Everything else is
// copied into a temporary directory first: a subtree of a stage, a local
// context with .dockerignore patterns (the copy is the filtered view that
// COPY would see) and a writable local mount (writes never reach the
// client's files). The copy resolves the selector inside the source tree
// (CVE-2024-1753: a symlink source like /rootlink -> / stays in the tree).
func (w *Worker) bindMount(ctx context.Context, m llb.Mount, in solver.Result) ([]executor.Mount, func(), error) {
	sel := selectorPath(m.Selector)
	opts := []string{"rbind"}
	if m.Readonly {
		opts = append(opts, "ro")
	}
	switch x := in.(type) {
	case *localResult:
		if m.Readonly && len(x.in.Excludes) == 0 {
			src, err := fsutil.ResolveInRoot(x.in.Root, sel)
			if err != nil {
				return nil, nil, fmt.Errorf("mount %s: source %s: %w", m.Dest, sel, hidePath(err))
			}
			if _, err := os.Stat(src); err != nil {
				return nil, nil, fmt.Errorf("mount %s: source %s in the build context: %w", m.Dest, sel, hidePath(err))
			}
			return []executor.Mount{{Type: "bind", Source: src, Target: m.Dest, Options: opts}}, nil, nil
		}
	case *Ref, nil:
		if sel == "/" {
			parent, _ := snapshotName(in)
			sn := w.opt.Snapshotter
			key := newID("mount-")
			var ms []snapshot.Mount
			var err error
			if m.Readonly {
				ms, err = sn.View(ctx, key, parent)
			} else {
				ms, err = sn.Prepare(ctx, key, parent)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("mount %s: %w", m.Dest, err)
			}
			cleanup := func() { sn.Remove(context.WithoutCancel(ctx), key) }
			return toExecMounts(ms, m.Dest), cleanup, nil
		}
	default:
		return nil, nil, fmt.Errorf("mount %s: unexpected input %T", m.Dest, in)
	}
	tmp, err := w.tempDir("bind-")
	if err != nil {
		return nil, nil, fmt.Errorf("mount %s: %w", m.Dest, err)
	}
	cleanup := func() { os.RemoveAll(tmp) }
	dst := filepath.Join(tmp, "src")
	if err := w.copySubtree(ctx, in, sel, dst); err != nil {
		return nil, cleanup, fmt.Errorf("mount %s: %w", m.Dest, err)
	}
	return []executor.Mount{{Type: "bind", Source: dst, Target: m.Dest, Options: opts}}, cleanup, nil
}

// tempDir makes a private temporary directory under the worker's state
// (see StateTempDir).
func (w *Worker) tempDir(prefix string) (string, error) {
	if w.opt.StateDir == "" {
		return os.MkdirTemp("", prefix)
	}
	return StateTempDir(w.opt.StateDir, prefix)
}

// copySubtree copies the path sel of the tree in (a local context, with
// its excludes applied, or a stage) to the new path dst, which becomes a
// directory or a file like sel. sel is resolved inside the tree.
func (w *Worker) copySubtree(ctx context.Context, in solver.Result, sel, dst string) error {
	sn := w.opt.Snapshotter
	sets := [][]snapshot.Mount{{{Type: "bind", Source: filepath.Dir(dst), Options: []string{"rbind", "rw"}}}}
	var fin fileop.Input
	srcSet := -1
	switch x := in.(type) {
	case nil:
	case *localResult:
		fin = x.in
	case *Ref:
		if x.rec.Snapshot != "" {
			view := newID("view-")
			ms, err := sn.View(ctx, view, x.rec.Snapshot)
			if err != nil {
				return err
			}
			defer sn.Remove(context.WithoutCancel(ctx), view)
			srcSet = len(sets)
			sets = append(sets, ms)
		}
	default:
		return fmt.Errorf("unexpected input %T", in)
	}
	return snapshot.WithMounts(ctx, sets, func(roots []string) error {
		if srcSet >= 0 {
			fin = fileop.Input{Root: roots[srcSet]}
		}
		if fin.Root == "" {
			if sel == "/" {
				return os.Mkdir(dst, 0o755)
			}
			return fmt.Errorf("source %s: %w", sel, os.ErrNotExist)
		}
		src, err := fsutil.ResolveInRoot(fin.Root, sel)
		if err != nil {
			return fmt.Errorf("source %s: %w", sel, hidePath(err))
		}
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("source %s: %w", sel, hidePath(err))
		}
		name := "/" + filepath.Base(dst)
		cp := &llb.Copy{Src: 0, SrcPaths: []string{sel}, Dest: name, FollowSymlinks: true, CreateDestPath: true}
		if fi.IsDir() {
			if err := os.Mkdir(filepath.Join(roots[0], name), fi.Mode().Perm()); err != nil {
				return err
			}
			cp.Dest = name + "/"
			cp.DirContentsOnly = true
		}
		return fileop.Apply(ctx, roots[0], []fileop.Input{fin}, llb.FileOp{Base: -1, Actions: []llb.FileAction{{Copy: cp}}})
	})
}

// cacheDirName maps a cache id (user input) to one safe directory name: a
// readable prefix and a hash, so "../../.." never leaves cache-mounts
// (CVE-2024-9675) and "a/b" and "a_b" stay apart.
func cacheDirName(id string) string {
	sum := sha256.Sum256([]byte(id))
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, strings.Trim(path.Clean("/"+id), "/"))
	if len(clean) > 40 {
		clean = clean[:40]
	}
	return clean + "-" + hex.EncodeToString(sum[:])[:16]
}

// cacheMountDir returns the persistent directory of a shared cache mount,
// creating it when missing.
func (w *Worker) cacheMountDir(m llb.Mount) (string, error) {
	dir, _, err := w.acquireCache(context.Background(), m, nil)
	return dir, err
}

// acquireCache returns the persistent directory of cache mount m under
// StateDir/cache-mounts, created (owned by m.UID:m.GID with m.Mode, seeded
// from the tree in when the mount has a from=) the first
// time the id is used. The release function ends this step's use: for
// sharing=locked it lets the next step with the id run, for
// sharing=private it frees the directory for reuse.
func (w *Worker) acquireCache(ctx context.Context, m llb.Mount, in solver.Result) (string, func(), error) {
	if w.opt.StateDir == "" {
		return "", nil, errors.New("cache mounts need a state directory")
	}
	id := m.CacheID
	if id == "" {
		id = m.Dest
	}
	name := cacheDirName(id)
	var release func()
	switch m.CacheSharing {
	case llb.SharingLocked:
		unlock, err := w.mounts.lock(ctx, name)
		if err != nil {
			return "", nil, fmt.Errorf("waiting for cache mount %q: %w", id, err)
		}
		// Other processes on the root take the same lock.
		if err := os.MkdirAll(filepath.Dir(w.cacheLockFile(name)), 0o700); err != nil {
			unlock()
			return "", nil, fmt.Errorf("cache mount %q: %w", id, err)
		}
		funlock, err := fsutil.LockContext(ctx, w.cacheLockFile(name))
		if err != nil {
			unlock()
			return "", nil, fmt.Errorf("waiting for cache mount %q: %w", id, err)
		}
		release = func() { funlock(); unlock() }
	case llb.SharingPrivate:
		var err error
		if name, release, err = w.claimPrivate(name); err != nil {
			return "", nil, fmt.Errorf("cache mount %q: %w", id, err)
		}
	}
	dir, err := w.createCacheDir(ctx, name, m, in)
	if err != nil {
		return "", release, fmt.Errorf("cache mount %q: %w", id, err)
	}
	// Other processes on the root export the mount only while no step
	// uses it (see WithCacheMount).
	unlockShared, err := w.shareCacheMount(ctx, name)
	if err != nil {
		return "", release, fmt.Errorf("cache mount %q: %w", id, err)
	}
	w.noteCacheMount(id)
	return dir, chainRelease(unlockShared, release), nil
}

// cacheLockFile is the file the users of cache dir name flock, across
// processes.
func (w *Worker) cacheLockFile(name string) string {
	return filepath.Join(w.opt.StateDir, "cache-mounts", ".locks", name)
}

// claimPrivate returns the first of name, name-1, name-2, ... that no step
// of this process and no other process uses, and holds it until release.
func (w *Worker) claimPrivate(name string) (string, func(), error) {
	if err := os.MkdirAll(filepath.Dir(w.cacheLockFile(name)), 0o700); err != nil {
		return "", nil, err
	}
	for i := 0; ; i++ {
		n, release := w.mounts.claim(name)
		unlock, ok, err := fsutil.TryLock(w.cacheLockFile(n))
		if err != nil {
			release()
			return "", nil, err
		}
		if ok {
			return n, func() { unlock(); release() }, nil
		}
		// Used by another process: keep n claimed here while looking
		// further, so claim moves on.
		defer release()
		if i > 1000 {
			return "", nil, errors.New("more than 1000 private copies in use")
		}
	}
}

// createCacheDir makes cache-mounts/name once, atomically: it is prepared
// under a temporary name and renamed into place.
func (w *Worker) createCacheDir(ctx context.Context, name string, m llb.Mount, in solver.Result) (string, error) {
	base := filepath.Join(w.opt.StateDir, "cache-mounts")
	dir := filepath.Join(base, name)
	w.mounts.mu.Lock()
	defer w.mounts.mu.Unlock()
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return dir, nil
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", err
	}
	owner, err := stateLease(w.opt.StateDir)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(base, ".new-"+owner+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	stage := filepath.Join(tmp, "dir")
	if m.Input >= 0 {
		// As in BuildKit, the cache starts as a copy of the whole from=
		// tree; source= selects the directory mounted (cacheSubdir).
		if err := w.copySubtree(ctx, in, "/", stage); err != nil {
			return "", fmt.Errorf("seeding from the mount's from= stage: %w", err)
		}
	} else if restored, err := w.restoreCacheMount(ctx, m, stage); err != nil {
		return "", err
	} else if !restored {
		if err := os.Mkdir(stage, 0o755); err != nil {
			return "", err
		}
	}
	mode := os.FileMode(0o755)
	if m.Mode != nil {
		mode = fsutil.GoMode(*m.Mode) & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
	}
	uid, gid := 0, 0
	if m.UID != nil {
		uid = *m.UID
	}
	if m.GID != nil {
		gid = *m.GID
	}
	// chown before chmod: chown clears the setuid and setgid bits.
	if err := os.Lchown(stage, uid, gid); err != nil {
		return "", err
	}
	if err := os.Chmod(stage, mode); err != nil {
		return "", err
	}
	if err := os.Rename(stage, dir); err != nil {
		// Another process made it first: theirs is as good.
		if fi, serr := os.Stat(dir); serr == nil && fi.IsDir() {
			return dir, nil
		}
		return "", err
	}
	return dir, nil
}

// replaceEnv returns env with the KEY=VALUE pairs of extra set, replacing
// any value env has for the key.
func replaceEnv(env, extra []string) []string {
	if len(extra) == 0 {
		return env
	}
	set := map[string]bool{}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	out := make([]string, 0, len(env)+len(extra))
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); !set[k] {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// addEnv returns env with the KEY=VALUE pairs of extra added. A key the
// step's own environment already sets keeps its value (a RUN that sets
// SSH_AUTH_SOCK itself wins); a key set twice by mounts takes the first.
func addEnv(env, extra []string) []string {
	if len(extra) == 0 {
		return env
	}
	out := append([]string(nil), env...)
	have := map[string]bool{}
	for _, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		have[k] = true
	}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		if have[k] {
			continue
		}
		have[k] = true
		out = append(out, kv)
	}
	return out
}

// PruneNoCacheMounts empties, before a build, the cache mounts of the exec
// ops of v that ignore the cache (--no-cache), so they start empty, as
// BuildKit prunes them when it loads such a definition (moby/buildkit#5305).
// Later steps of the same build then share what the first one writes.
func (w *Worker) PruneNoCacheMounts(v *llb.Vertex) error {
	if w.opt.StateDir == "" || v == nil {
		return nil
	}
	ids := map[string]bool{}
	_ = llb.Walk(v, func(x *llb.Vertex) error {
		op, ok := x.Op().(llb.ExecOp)
		if !ok || !x.Meta().IgnoreCache {
			return nil
		}
		for _, m := range op.Mounts {
			if m.Type == llb.MountCache {
				id := m.CacheID
				if id == "" {
					id = m.Dest
				}
				ids[id] = true
			}
		}
		return nil
	})
	base := filepath.Join(w.opt.StateDir, "cache-mounts")
	w.mounts.mu.Lock()
	defer w.mounts.mu.Unlock()
	for id := range ids {
		name := cacheDirName(id)
		// name, and name-N of private mounts.
		matches, _ := filepath.Glob(filepath.Join(base, name+"*"))
		for _, dir := range matches {
			if b := filepath.Base(dir); b != name && !strings.HasPrefix(b, name+"-") {
				continue
			}
			// Renamed first: a build using the directory keeps its
			// mount, and no half-removed cache is ever reused.
			old, err := os.MkdirTemp(base, ".old-")
			if err != nil {
				return fmt.Errorf("emptying cache mount %q: %w", id, err)
			}
			if err := os.Rename(dir, filepath.Join(old, "dir")); err != nil {
				os.RemoveAll(old)
				return fmt.Errorf("emptying cache mount %q: %w", id, err)
			}
			if err := os.RemoveAll(old); err != nil {
				return fmt.Errorf("emptying cache mount %q: %w", id, err)
			}
		}
	}
	return nil
}
