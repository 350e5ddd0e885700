// Package fsutil holds the filesystem helpers shared by the snapshotters and
// the file ops: resolving hostile paths inside a root without escaping it,
// and copying trees with their metadata.
package fsutil
