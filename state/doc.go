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
//	images/             the local image store (package exporter/store)
//	containers/         the records of `builder run` (package state/containers)
//	registry/           the registry client's state (tag records, blob sources)
//	tmp/                scratch files of one command (a context read from stdin)
//	cache-mounts/, http/ the worker's own state (solver/ops, under WorkerDir)
//
// Open takes the root lock and returns a Root; its accessors open each part
// on first use (an `images` listing never probes overlayfs or needs the
// privileges of the executor), and Close releases everything in reverse.
//
// Cross-process safety lives here: the root lock is today's lease (shared
// by every command that keeps snapshots or cache results in use, exclusive
// for prune). Start-up recovery of what dead processes left behind runs in
// Root.recover, with the lock held, before any part is handed out.
package state
