package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
	"github.com/builderdev/builder/state"
	units "github.com/docker/go-units"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// gcLimitEnv sets the default of --gc-limit.
const gcLimitEnv = "BUILDER_GC_LIMIT"

// maxDefaultGCLimit caps the default limit (as BuildKit's default GC
// policy keeps at most 10% of the disk, or 20 GB... whichever is smaller).
const maxDefaultGCLimit = 20e9

// gcLimit returns the root size above which a build collects garbage:
// flag, else $BUILDER_GC_LIMIT, else the smaller of 10% of the root's
// filesystem and 20 GB. "0" turns the automatic GC off (-1).
func gcLimit(flag, root string) (int64, error) {
	v, from := flag, "--gc-limit"
	if v == "" {
		v, from = os.Getenv(gcLimitEnv), gcLimitEnv
	}
	if v != "" {
		n, err := units.RAMInBytes(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid %s %q: want a size such as 20g or 500MB (0 turns the automatic GC off)", from, v)
		}
		if n == 0 {
			return -1, nil
		}
		return n, nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return maxDefaultGCLimit, nil
	}
	return min(int64(st.Blocks)*int64(st.Bsize)/10, maxDefaultGCLimit), nil
}

// autoGC runs after a successful build: when the root takes more than
// limit bytes it removes build cache, least recently used first, until the
// root fits, and reports what it freed as a progress step. It only runs
// while no other process uses the root (it takes the root lock
// exclusively, without waiting), so it never touches what a running build
// or container uses; otherwise it says so and a later build collects.
func autoGC(ctx context.Context, r solver.Reporter, root *state.Root, limit int64) error {
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
	keepBlobs, keepSnaps, err := inUse(root)
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
