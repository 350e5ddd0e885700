package run

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/builderdev/builder/state"
)

// Remove removes the containers refs (IDs, ID prefixes or names) of the
// root dir and their filesystems, as docker rm does, calling removed with
// each ref removed; a running container is stopped with force, waiting at
// most wait. Errors of all refs are joined.
func Remove(ctx context.Context, dir string, refs []string, force bool, wait time.Duration, removed func(ref string)) error {
	root, err := state.Open(dir, state.Options{Lock: state.LockShared})
	if err != nil {
		return err
	}
	defer root.Close()
	cs, err := root.Containers()
	if err != nil {
		return err
	}
	sn, err := root.Snapshots()
	if err != nil {
		return err
	}
	var errs []error
	for _, ref := range refs {
		c, err := cs.Find(ref)
		if err == nil {
			err = cs.Remove(ctx, sn, c, force, wait)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("Error response: %w", err))
			continue
		}
		removed(ref)
	}
	return errors.Join(errs...)
}
