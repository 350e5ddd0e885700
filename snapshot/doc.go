// Package snapshot keeps the filesystem states of a build as chains of
// snapshots (see Snapshotter) and turns them into OCI layers and back.
//
// Two implementations share one metadata store:
//
//   - overlay: each snapshot is an overlayfs upper dir; a committed
//     snapshot's upper dir is its diff, so Diff only walks it.
//   - native: a copy-based fallback for kernels or filesystems without a
//     usable overlayfs; Prepare copies the parent tree and Diff compares the
//     two trees.
//
// New picks overlay when a test mount works under the root and native
// otherwise; NewNamed forces one. internal/snapshottest is the
// conformance suite both pass (TestConformance runs it on each).
//
// WithMounts assembles snapshots' mounts in a private mount namespace, so a
// build never leaves mounts in the host's mount table, even when killed.
//
// Layout under a root:
//
//	driver                 "overlay" or "native", fixed at first use
//	lock                   flocked around every change of the snapshot set
//	next-id                the next snapshot id (ids are never reused)
//	leases/<lease>         one per live process (fsutil.OwnLease)
//	snapshots/<id>/meta.json  name, kind, parent, owner lease of an active one
//	snapshots/<id>/fs      the tree (overlay: upper dir)
//	snapshots/<id>/work    overlay work dir
//	trash/<lease>.<id>.*   snapshots being removed by that process
//
// Many processes share a root: committed snapshots are shared and
// complete, active snapshots and views belong to the live process whose
// lease they name, and start-up recovery removes only what belongs to no
// live process (or whose metadata or parent is gone: a damaged snapshot is
// absent, never an error).
//
// Ids are short decimal numbers so that long overlay lowerdir chains fit in
// one page of mount data.
package snapshot
