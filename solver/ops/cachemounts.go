package ops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/llb"
)

// CacheMountRestorer fills a cache mount that does not exist on this root
// yet from elsewhere (a remote cache exported with cache-mounts=true).
type CacheMountRestorer interface {
	// RestoreCacheMount writes the content of cache mount id into the new
	// directory dir (which it creates) and says whether it had one.
	RestoreCacheMount(ctx context.Context, id, dir string) (bool, error)
}

// ErrCacheMountBusy is returned (wrapped) by WithCacheMount when steps of
// other builds keep using the mount.
var ErrCacheMountBusy = errors.New("cache mount in use")

// SetCacheMountRestorer makes the cache mounts a step creates start from
// what r has for their id instead of empty (a mount seeded from a from=
// stage is not restored).
func (w *Worker) SetCacheMountRestorer(r CacheMountRestorer) {
	w.mu.Lock()
	w.restorer = r
	w.mu.Unlock()
}

// restoreCacheMount fills stage (not existing yet) from the restorer.
func (w *Worker) restoreCacheMount(ctx context.Context, m llb.Mount, stage string) (bool, error) {
	w.mu.Lock()
	r := w.restorer
	w.mu.Unlock()
	if r == nil {
		return false, nil
	}
	return r.RestoreCacheMount(ctx, cacheMountID(m), stage)
}

func cacheMountID(m llb.Mount) string {
	if m.CacheID != "" {
		return m.CacheID
	}
	return m.Dest
}

// noteCacheMount remembers that this build used cache mount id.
func (w *Worker) noteCacheMount(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.usedMounts == nil {
		w.usedMounts = map[string]bool{}
	}
	w.usedMounts[id] = true
}

// UsedCacheMounts lists the ids of the cache mounts this build's steps
// used, sorted.
func (w *Worker) UsedCacheMounts() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for id := range w.usedMounts {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// cacheMountLock is the lock file of cache mount directory name (hidden,
// so prune does not count it as a mount): steps
// hold it shared while they use the mount, WithCacheMount exclusively.
func (w *Worker) cacheMountLock(name string) string {
	return filepath.Join(w.opt.StateDir, "cache-mounts", "."+name+".lock")
}

// shareCacheMount takes the shared lock of mount name for one step.
func (w *Worker) shareCacheMount(ctx context.Context, name string) (func(), error) {
	for {
		unlock, err := fsutil.Lock(w.cacheMountLock(name), false, true)
		if err == nil {
			return unlock, nil
		}
		// Held exclusively only while an export reads the mount.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for an export of the mount to finish: %w", context.Cause(ctx))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WithCacheMount runs fn on the directory of the shared cache mount id
// ("" when it does not exist) while no step of any build on this root uses
// it: it waits up to wait for running steps to finish, then fails with
// ErrCacheMountBusy. fn must only read the directory.
func (w *Worker) WithCacheMount(ctx context.Context, id string, wait time.Duration, fn func(dir string) error) error {
	if w.opt.StateDir == "" {
		return errors.New("cache mounts need a state directory")
	}
	name := cacheDirName(id)
	if err := os.MkdirAll(filepath.Join(w.opt.StateDir, "cache-mounts"), 0o700); err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	var unlock func()
	for {
		var err error
		if unlock, err = fsutil.Lock(w.cacheMountLock(name), true, true); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cache mount %q: %w by a running step", id, ErrCacheMountBusy)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(100 * time.Millisecond):
		}
	}
	defer unlock()
	dir := filepath.Join(w.opt.StateDir, "cache-mounts", name)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		dir = ""
	}
	return fn(dir)
}

// chainRelease returns a release running first then second (nil ones
// skipped).
func chainRelease(first, second func()) func() {
	return func() {
		if first != nil {
			first()
		}
		if second != nil {
			second()
		}
	}
}
