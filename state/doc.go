// Package state owns the builder's state root (--root): it is the only
// package that knows the root's layout, and every command opens the root
// through it, as buildah passes one storage.Store everywhere and BuildKit's
// worker builds its cache, snapshotter and executor once.
//
// The layout of a root:
//
//	lock                the root lock (see Lock)
//	cache/              cache keys, metadata records, blobs (package cache)
//	cache/content/      the blob store, shared with the image store
//	cache/filehash.json the persistent file-hash cache of build contexts
//	snapshots/          filesystem states (package snapshot)
//	executor/           the sandboxes' scratch space (package executor)
//	images/             the local image store (package exporter/imagestore)
//	containers/         the records of `builder run` (package internal/containers)
//	registry/           the registry client's state (tag records, blob sources)
//	tmp/                scratch files of one command (a context read from stdin)
//	cache-mounts/, http/ the worker's own state (solver/ops, under WorkerDir)
//
// Open takes the root lock and returns a Root; its accessors open each part
// on first use (an `images` listing never probes overlayfs or needs the
// privileges of the executor), and Close releases everything in reverse.
//
// Cross-process safety: many builder processes share a root. The root
// lock is shared by every command that keeps snapshots or cache results in
// use (build, run, rm) and exclusive for prune and the automatic GC after
// a build (Root.TryExclusive), so nothing is removed under a running build.
// Everything else is either complete (renamed into place, fsynced, and for
// metadata sealed with a checksum) or owned by a live process: objects made
// before they are complete carry the maker's lease (fsutil.OwnLease: an
// flocked file the kernel unlocks when the process dies, kill -9 included)
// in their name or metadata. Start-up recovery removes only what belongs to
// a dead lease: Root.recover, with the lock held, before any part is handed
// out, for temp dirs, half-made cache mounts and the sandboxes' run
// directories and cgroups; the snapshotter and the blob store do the same
// for their active snapshots, trash and ingest files when they open. An
// identical step wanted by two processes runs once: the solver holds a
// per-key flock (cache.Store.LockKey) while it runs a step that missed.
// Anything missing or damaged under the root is treated as absent and
// made again (see packages snapshot and cache, and builder du --verify).
package state
