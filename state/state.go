package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/executor"
	imagestore "github.com/builderdev/builder/exporter/imagestore"
	"github.com/builderdev/builder/internal/containers"
	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/snapshot"
	digest "github.com/opencontainers/go-digest"
)

// Lock is how a command holds the root lock.
type Lock int

const (
	// LockNone takes no root lock: commands that only read or update the
	// image store or the container records, which lock themselves
	// (images, tag, rmi, save, push, ps).
	LockNone Lock = iota
	// LockShared is held by every command that keeps snapshots or cache
	// results in use (build, run, rm), so that prune never removes them.
	LockShared
	// LockExclusive is held by prune: no other command uses the root.
	LockExclusive
)

// ErrBusy is returned (wrapped) by Open with NoWait while another builder
// process holds a conflicting root lock.
var ErrBusy = errors.New("in use by another builder process")

// Options say how to open a root.
type Options struct {
	// Lock is the root lock to hold until Close.
	Lock Lock
	// NoWait fails with ErrBusy instead of waiting for the lock.
	NoWait bool
	// MustExist fails with an error wrapping fs.ErrNotExist when the
	// root does not exist, instead of creating it.
	MustExist bool
}

// Root is an open state root. Its accessors open each part once, on first
// use; a Root is meant for one goroutine at a time (a command's wiring),
// while the parts it returns are safe for concurrent use.
type Root struct {
	dir    string
	unlock func()

	cache *cache.Store
	blobs *cache.BlobStore
	// snapMu guards snapshots: a build opens them in the background
	// (see SnapshotsLater).
	snapMu     sync.Mutex
	snapshots  snapshot.Snapshotter
	exec       *executor.Executor
	images     *imagestore.Store
	containers *containers.Store
	hashes     *cache.FileHashCache

	recoverErr error
}

// Open opens the state root dir (creating it, mode 0700, unless
// opt.MustExist) and takes the root lock opt.Lock.
func Open(dir string, opt Options) (*Root, error) {
	if dir == "" {
		return nil, errors.New("state root: empty path")
	}
	if opt.MustExist {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("state directory %s: %w", dir, err)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	r := &Root{dir: dir, unlock: func() {}}
	if opt.Lock != LockNone {
		unlock, err := fsutil.Lock(r.path("lock"), opt.Lock == LockExclusive, opt.NoWait)
		if errors.Is(err, fsutil.ErrLocked) {
			return nil, fmt.Errorf("%s: %w", dir, ErrBusy)
		}
		if err != nil {
			return nil, err
		}
		r.unlock = unlock
	}
	if opt.Lock != LockNone {
		if err := r.recover(); err != nil {
			r.unlock()
			return nil, err
		}
	}
	return r, nil
}

// recover is the start-up recovery: Open calls it with the root lock held
// (shared by concurrent builds), before any part is handed out. It removes
// only what provably belongs to a dead process: the objects that a process
// makes before they are complete carry its lease (fsutil.OwnLease, an
// flocked file the kernel unlocks when the process dies, also on kill -9).
// Here: temporary directories (tmp/<lease>-*), half-made cache mounts
// (cache-mounts/.new-<lease>-*) and the run directories and cgroups of
// sandboxes (executor.Recover). The parts recover their own objects the
// same way when they are opened: the blob store its ingest files
// (ingest/blob-<lease>-*), the snapshotter its active snapshots, views and
// trash (see package snapshot).
func (r *Root) recover() error {
	leases := r.path("leases")
	r.recoverErr = errors.Join(
		fsutil.RemoveDead(r.path("tmp"), "", leases),
		fsutil.RemoveDead(r.path("cache-mounts"), ".new-", leases),
		executor.Recover(r.path("executor")),
	)
	fsutil.ReapLeases(leases)
	return nil
}

// TryExclusive trades the shared root lock for an exclusive one if no
// other process holds the root: it is how a build that is done runs the
// automatic GC, which must never touch what another build or container
// uses. It returns false (holding no lock: the caller is done with the
// root's contents) when another process holds it.
func (r *Root) TryExclusive() (bool, error) {
	r.unlock()
	r.unlock = func() {}
	unlock, err := fsutil.Lock(r.path("lock"), true, true)
	if errors.Is(err, fsutil.ErrLocked) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r.unlock = unlock
	return true, nil
}

// RecoveryError is what start-up recovery could not remove of what killed
// builder processes left (nil when it removed everything): worth a
// warning, never a reason to stop.
func (r *Root) RecoveryError() error { return r.recoverErr }

func (r *Root) path(elem ...string) string {
	return filepath.Join(append([]string{r.dir}, elem...)...)
}

// Dir is the root's directory.
func (r *Root) Dir() string { return r.dir }

// Cache returns the cache store (ROOT/cache).
func (r *Root) Cache() (*cache.Store, error) {
	if r.cache == nil {
		c, err := cache.Open(r.path("cache"))
		if err != nil {
			return nil, fmt.Errorf("opening cache in %s: %w", r.dir, err)
		}
		r.cache = c
	}
	return r.cache, nil
}

// Blobs returns the blob store (ROOT/cache/content): the cache's when the
// cache is open, else the blob store alone (the image commands need no
// more).
func (r *Root) Blobs() (*cache.BlobStore, error) {
	if r.cache != nil {
		return r.cache.Blobs(), nil
	}
	if r.blobs == nil {
		b, err := cache.OpenBlobStore(r.path("cache", "content"))
		if err != nil {
			return nil, fmt.Errorf("opening the blob store in %s: %w", r.dir, err)
		}
		r.blobs = b
	}
	return r.blobs, nil
}

// FileHashes returns the persistent file-hash cache of build contexts
// (ROOT/cache/filehash.json); Close saves it.
func (r *Root) FileHashes() (*cache.FileHashCache, error) {
	if r.hashes == nil {
		h, err := cache.NewFileHashCache(r.path("cache", "filehash.json"))
		if err != nil {
			return nil, err
		}
		r.hashes = h
	}
	return r.hashes, nil
}

// Snapshots returns the snapshotter (ROOT/snapshots).
func (r *Root) Snapshots() (snapshot.Snapshotter, error) {
	r.snapMu.Lock()
	defer r.snapMu.Unlock()
	if r.snapshots == nil {
		sn, err := snapshot.New(r.path("snapshots"))
		if err != nil {
			return nil, fmt.Errorf("opening snapshots in %s: %w", r.dir, err)
		}
		r.snapshots = sn
	}
	return r.snapshots, nil
}

// SnapshotsLater opens the snapshotter in the background and returns at
// once one whose calls wait for it: opening a new root tests an overlay
// mount (~20 ms), which a build can spend converting its Dockerfile and
// asking the registry about its base images.
func (r *Root) SnapshotsLater() snapshot.Snapshotter {
	return snapshot.Later(r.Snapshots)
}

// Executor returns the executor, with its scratch space in ROOT/executor.
// It fails without the privileges to run sandboxes.
func (r *Root) Executor() (*executor.Executor, error) {
	if r.exec == nil {
		ex, err := executor.New(r.path("executor"))
		if err != nil {
			return nil, err
		}
		r.exec = ex
	}
	return r.exec, nil
}

// Images returns the local image store (ROOT/images), over Blobs.
func (r *Root) Images() (*imagestore.Store, error) {
	if r.images == nil {
		blobs, err := r.Blobs()
		if err != nil {
			return nil, err
		}
		s, err := imagestore.Open(r.path("images"), blobs)
		if err != nil {
			return nil, err
		}
		r.images = s
	}
	return r.images, nil
}

// Containers returns the container records (ROOT/containers).
func (r *Root) Containers() (*containers.Store, error) {
	if r.containers == nil {
		cs, err := containers.Open(r.path("containers"))
		if err != nil {
			return nil, err
		}
		r.containers = cs
	}
	return r.containers, nil
}

// ImageUsers lists the containers (ROOT/containers) as the image store's
// Remove and Prune see them: the image each runs and whether its builder
// process still runs it.
func (r *Root) ImageUsers() ([]imagestore.Container, error) {
	cs, err := r.Containers()
	if err != nil {
		return nil, err
	}
	list, err := cs.ListRunning()
	if err != nil {
		return nil, err
	}
	out := make([]imagestore.Container, 0, len(list))
	for _, l := range list {
		d, err := digest.Parse(l.Container.ImageID)
		if err != nil {
			continue // a record from before ImageID: no image to keep
		}
		out = append(out, imagestore.Container{ID: l.Container.ID, ImageID: d, Running: l.Running})
	}
	return out, nil
}

// RegistryDir is the registry client's state directory (ROOT/registry).
func (r *Root) RegistryDir() string { return r.path("registry") }

// WorkerDir is the build worker's own state directory (solver/ops
// Options.StateDir: cache mounts, HTTP sources, scratch files): the root
// itself.
func (r *Root) WorkerDir() string { return r.dir }

// TempDir makes a new directory under ROOT/tmp for one command's scratch
// files (in the root's filesystem), named "<lease>-<pattern>-*" after this
// process's lease: the caller removes it, or recovery does once the
// process is dead.
func (r *Root) TempDir(pattern string) (string, error) {
	return fsutil.LeasedTempDir(r.path("tmp"), r.path("leases"), pattern)
}

// Close saves the file-hash cache, closes every part that was opened and
// releases the root lock. It returns the errors joined.
func (r *Root) Close() error {
	var errs []error
	if r.hashes != nil {
		errs = append(errs, r.hashes.Save())
	}
	r.snapMu.Lock()
	if r.snapshots != nil {
		errs = append(errs, r.snapshots.Close())
	}
	r.snapMu.Unlock()
	if r.cache != nil {
		errs = append(errs, r.cache.Close())
	}
	r.cache, r.blobs, r.snapshots, r.exec, r.images, r.containers, r.hashes = nil, nil, nil, nil, nil, nil, nil
	r.unlock()
	r.unlock = func() {}
	return errors.Join(errs...)
}
