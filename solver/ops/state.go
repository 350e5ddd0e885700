package ops

import (
	"path/filepath"

	"github.com/builderdev/builder/internal/fsutil"
)

// The worker's state directory is shared by every builder process using
// the root. What a process makes there before it is complete carries the
// process's lease (fsutil.OwnLease in STATE/leases) in its name:
//
//	tmp/<lease>-<kind>-*          temporary directories (bind sources,
//	                              secrets, git checkouts)
//	cache-mounts/.new-<lease>-*   a cache mount being created
//	cache-mounts/.locks/<name>    flocked by the users of a cache mount
//	                              with sharing=locked or private
//
// The root's owner (package state) removes the entries of dead processes
// at start-up (fsutil.RemoveDead).

// stateLease returns this process's lease id under stateDir.
func stateLease(stateDir string) (string, error) {
	return fsutil.OwnLease(filepath.Join(stateDir, "leases"))
}

// StateTempDir makes a private temporary directory under stateDir/tmp
// named after this process's lease and kind ("bind", "git", ...).
func StateTempDir(stateDir, kind string) (string, error) {
	return fsutil.LeasedTempDir(filepath.Join(stateDir, "tmp"), filepath.Join(stateDir, "leases"), kind)
}
