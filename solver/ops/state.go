package ops

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/builderdev/builder/snapshot/fsutil"
)

// The worker's state directory is shared by every builder process using
// the root. What a process makes there before it is complete carries the
// process's lease (fsutil.OwnLease in STATE/leases) in its name:
//
//	tmp/<lease>-<kind>-*          temporary directories (bind sources,
//	                              secrets, git checkouts, stdin contexts)
//	cache-mounts/.new-<lease>-*   a cache mount being created
//	cache-mounts/.locks/<name>    flocked by the users of a cache mount
//	                              with sharing=locked or private
//
// RecoverState removes the temporary entries of dead processes.

// stateLease returns this process's lease id under stateDir.
func stateLease(stateDir string) (string, error) {
	return fsutil.OwnLease(filepath.Join(stateDir, "leases"))
}

// StateTempDir makes a private temporary directory under stateDir/tmp
// named after this process's lease and kind ("bind", "git", ...), so that
// RecoverState can tell when its owner is dead.
func StateTempDir(stateDir, kind string) (string, error) {
	base := filepath.Join(stateDir, "tmp")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", fmt.Errorf("temp dir %s: %w", base, err)
	}
	owner, err := stateLease(stateDir)
	if err != nil {
		return "", err
	}
	return os.MkdirTemp(base, owner+"-"+strings.TrimSuffix(kind, "-")+"-")
}

// RecoverState removes what dead builder processes left in stateDir: their
// temporary directories and half-made cache mounts. Entries of live
// processes (this one included) and entries without an owner stay.
func RecoverState(stateDir string) error {
	leases := filepath.Join(stateDir, "leases")
	if _, err := stateLease(stateDir); err != nil {
		return err
	}
	dead := func(owner string) bool { return owner != "" && !fsutil.LeaseLive(leases, owner) }
	var errs []error
	clean := func(dir, prefix string) {
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		for _, e := range ents {
			if dead(fsutil.OwnerOf(e.Name(), prefix)) {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					errs = append(errs, fmt.Errorf("removing a dead build's leftover: %w", err))
				}
			}
		}
	}
	clean(filepath.Join(stateDir, "tmp"), "")
	clean(filepath.Join(stateDir, "cache-mounts"), ".new-")
	fsutil.ReapLeases(leases)
	return errors.Join(errs...)
}
