package prune

import (
	"context"
	"fmt"
	"time"

	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
	"github.com/builderdev/builder/state"
	units "github.com/docker/go-units"
	digest "github.com/opencontainers/go-digest"
)

// AutoGC runs after a successful build: when the root takes more than
// limit bytes it removes build cache, least recently used first, until the
// root fits, and reports what it freed as a progress step. It only runs
// while no other process uses the root (it takes the root lock
// exclusively, without waiting), so it never touches what a running build
// or container uses; otherwise it says so and a later build collects.
func AutoGC(ctx context.Context, r solver.Reporter, root *state.Root, limit int64) error {
	if limit < 0 {
		return nil
	}
	before, err := ops.DiskUsage(root.Dir())
	if err != nil || before <= limit {
		return err
	}
	name := fmt.Sprintf("[gc] state root %s is over its limit of %s", units.HumanSize(float64(before)), units.HumanSize(float64(limit)))
	d := digest.FromString(name + time.Now().String())
	st := solver.Status{Digest: d, Name: name, Started: time.Now()}
	r.Status(st)
	msg, err := collect(ctx, root, before, limit)
	if msg != "" {
		r.Log(solver.Log{Digest: d, Stream: 1, Data: []byte(msg + "\n"), Timestamp: time.Now()})
	}
	st.Completed, st.Err = time.Now(), err
	r.Status(st)
	return err
}

// collect prunes the least recently used build cache of root until about
// before-limit bytes are freed, and says what it did.
func collect(ctx context.Context, root *state.Root, before, limit int64) (string, error) {
	ok, err := root.TryExclusive()
	if err != nil {
		return "", err
	}
	if !ok {
		return "skipped: another builder process is using the root (a later build collects)", nil
	}
	store, err := root.Cache()
	if err != nil {
		return "", err
	}
	sn, err := root.Snapshots()
	if err != nil {
		return "", err
	}
	keepBlobs, keepSnaps, err := InUse(root)
	if err != nil {
		return "", err
	}
	opt := ops.PruneOptions{KeepBlobs: keepBlobs, KeepSnapshots: keepSnaps, StateDir: root.WorkerDir()}
	pr, err := ops.GC(ctx, store, sn, opt, before-limit)
	if err != nil {
		return "", err
	}
	after, err := ops.DiskUsage(root.Dir())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("freed %s (%d results, least recently used first); the root now takes %s",
		units.HumanSize(float64(max(before-after, 0))), len(pr.Results), units.HumanSize(float64(after))), nil
}
