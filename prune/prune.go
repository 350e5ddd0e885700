package prune

import (
	"context"
	"fmt"
	"strings"
	"time"

	imagestore "github.com/builderdev/builder/exporter/imagestore"
	"github.com/builderdev/builder/solver/ops"
	"github.com/builderdev/builder/state"
	digest "github.com/opencontainers/go-digest"
)

// InUse returns what a prune must keep: the blobs of the local images and
// the containers' snapshots.
func InUse(root *state.Root) (map[digest.Digest]bool, []string, error) {
	images, err := root.Images()
	if err != nil {
		return nil, nil, err
	}
	keepBlobs, err := images.Referenced()
	if err != nil {
		return nil, nil, fmt.Errorf("listing the blobs of stored images: %w", err)
	}
	keepSnaps, err := containerSnapshots(root)
	if err != nil {
		return nil, nil, err
	}
	return keepBlobs, keepSnaps, nil
}

// containerSnapshots are the snapshots of root's containers.
func containerSnapshots(root *state.Root) ([]string, error) {
	cs, err := root.Containers()
	if err != nil {
		return nil, err
	}
	ctrs, err := cs.List()
	if err != nil {
		return nil, err
	}
	var keepSnaps []string
	for _, c := range ctrs {
		keepSnaps = append(keepSnaps, c.Snapshot)
	}
	return keepSnaps, nil
}

// ParseFilters reads docker's prune filters; only until=DURATION is
// supported (a Go duration such as 24h or 90m).
func ParseFilters(filters []string) (time.Duration, error) {
	var until time.Duration
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return 0, fmt.Errorf("bad format of filter (expected name=value): %s", f)
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "until":
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil || d < 0 {
				return 0, fmt.Errorf("invalid filter 'until=%s': want a duration such as 24h", v)
			}
			until = d
		default:
			return 0, fmt.Errorf("invalid filter '%s'", k)
		}
	}
	return until, nil
}

// CacheOptions are builder prune's: without All the dangling cache (see
// ops.PruneOptions), with All everything but what the stored images and
// the containers use.
type CacheOptions struct {
	All         bool
	Until       time.Duration
	KeepStorage int64
}

// CacheReport is what Cache removed.
type CacheReport struct {
	// Damaged are the damaged images removed first.
	Damaged []imagestore.Image
	// Results are the IDs of the removed build cache objects.
	Results []string
	// Reclaimed is how much smaller the root became.
	Reclaimed int64
}

// Cache removes build cache from root, which the caller holds
// exclusively: damaged cache records and images first, then the cache o
// selects. The report lists what went, also when an error stopped it.
func Cache(ctx context.Context, root *state.Root, o CacheOptions) (*CacheReport, error) {
	out := &CacheReport{}
	before, err := ops.DiskUsage(root.Dir())
	if err != nil {
		return out, err
	}
	store, err := root.Cache()
	if err != nil {
		return out, err
	}
	// Damaged records are absent for builds; prune removes them.
	if _, err := store.Metadata().DeleteDamaged(); err != nil {
		return out, fmt.Errorf("builder prune: %w", err)
	}
	// Prune runs alone: nobody waits on a key lock.
	if err := store.RemoveKeyLocks(); err != nil {
		return out, fmt.Errorf("builder prune: %w", err)
	}
	sn, err := root.Snapshots()
	if err != nil {
		return out, err
	}
	images, err := root.Images()
	if err != nil {
		return out, err
	}
	// Damaged images go first: what they still reference is then free.
	if out.Damaged, err = images.RemoveDamaged(); err != nil {
		return out, fmt.Errorf("removing damaged images: %w", err)
	}
	keepBlobs, keepSnaps, err := InUse(root)
	if err != nil {
		return out, err
	}
	rep, err := ops.Prune(ctx, store, sn, ops.PruneOptions{
		All:           o.All,
		Until:         o.Until,
		KeepStorage:   o.KeepStorage,
		KeepBlobs:     keepBlobs,
		KeepSnapshots: keepSnaps,
		StateDir:      root.WorkerDir(),
	})
	if rep != nil {
		out.Results = rep.Results
	}
	if err != nil {
		return out, err
	}
	after, err := ops.DiskUsage(root.Dir())
	if err != nil {
		return out, err
	}
	out.Reclaimed = max(before-after, 0)
	return out, nil
}

// Usage is the disk usage report of root, with what builder prune -a
// would free.
func Usage(ctx context.Context, root *state.Root) (*ops.UsageReport, error) {
	store, err := root.Cache()
	if err != nil {
		return nil, err
	}
	sn, err := root.Snapshots()
	if err != nil {
		return nil, err
	}
	keepBlobs, keepSnaps, err := InUse(root)
	if err != nil {
		return nil, err
	}
	return ops.DiskUsageReport(ctx, store, sn, ops.PruneOptions{KeepBlobs: keepBlobs, KeepSnapshots: keepSnaps, StateDir: root.WorkerDir()})
}

// Images removes the dangling images of root (with all, every image no
// container uses), as docker image prune.
func Images(root *state.Root, all bool) ([]imagestore.Removed, error) {
	images, err := root.Images()
	if err != nil {
		return nil, err
	}
	ctrs, err := root.ImageUsers()
	if err != nil {
		return nil, err
	}
	return images.Prune(all, ctrs)
}

// Verify re-hashes every blob of root, removing the corrupt ones: it
// returns how many it checked and the corrupt ones.
func Verify(root *state.Root) (int, []digest.Digest, error) {
	store, err := root.Cache()
	if err != nil {
		return 0, nil, err
	}
	n := 0
	corrupt, err := store.Blobs().VerifyAll(func(digest.Digest, int64, error) { n++ })
	if err != nil {
		return 0, nil, fmt.Errorf("verifying blobs: %w", err)
	}
	return n, corrupt, nil
}
