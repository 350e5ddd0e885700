package ops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/snapshot"
	digest "github.com/opencontainers/go-digest"
)

// Usage kinds, in the order builder du prints them.
const (
	UsageBaseLayers  = "Base image layers"
	UsageResults     = "Build results"
	UsageImages      = "Local images"
	UsageSnapshots   = "Snapshots"
	UsageCacheMounts = "Cache mounts"
)

// UsageKinds lists the kinds in print order.
var UsageKinds = []string{UsageBaseLayers, UsageResults, UsageImages, UsageSnapshots, UsageCacheMounts}

// UsageItem is one thing that takes space under the root.
type UsageItem struct {
	Kind string
	// ID names it: a result or record ID, a blob digest, a snapshot or
	// cache mount name.
	ID   string
	Size int64
	// Reclaimable is true when builder prune -a removes it.
	Reclaimable bool
	// LastUsed is when a build last used it (zero when unknown).
	LastUsed time.Time
}

// UsageReport is the space the root's build cache takes, by kind.
type UsageReport struct {
	Items []UsageItem
}

// Totals returns count, size and reclaimable bytes of kind ("" = all).
func (r *UsageReport) Totals(kind string) (count int, size, reclaimable int64) {
	for _, it := range r.Items {
		if kind != "" && it.Kind != kind {
			continue
		}
		count++
		size += it.Size
		if it.Reclaimable {
			reclaimable += it.Size
		}
	}
	return count, size, reclaimable
}

// snapshotUsager is implemented by snapshotters that can tell the space a
// snapshot's own tree takes.
type snapshotUsager interface {
	Usage(ctx context.Context, name string) (int64, error)
}

// DiskUsageReport says what takes space under the root and what
// builder prune -a would remove (opt as for Prune with All; the blobs of
// the local images go into opt.KeepBlobs, the containers' snapshots into
// opt.KeepSnapshots). Each blob is counted once, under the first kind that
// uses it: base image layers (with the pulled manifests and configs), then
// build results, then local images (manifests, configs and layers only
// they keep).
func DiskUsageReport(ctx context.Context, store *cache.Store, sn snapshot.Snapshotter, opt PruneOptions) (*UsageReport, error) {
	opt.All = true
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	st, err := loadPrune(ctx, store, sn, opt.StateDir)
	if err != nil {
		return nil, err
	}
	plan := planPrune(st, opt)
	rep := &UsageReport{}
	lastUse := map[string]time.Time{}
	for _, e := range st.Keys {
		if t := e.LastUsed(); t.After(lastUse[e.ID]) {
			lastUse[e.ID] = t
		}
	}
	sizes := map[digest.Digest]int64{}
	if err := store.Blobs().Walk(func(d digest.Digest, n int64) error { sizes[d] = n; return nil }); err != nil {
		return nil, err
	}
	counted := map[digest.Digest]bool{}
	addBlob := func(kind string, d digest.Digest, used time.Time) {
		n, ok := sizes[d]
		if !ok || counted[d] {
			return
		}
		counted[d] = true
		rep.Items = append(rep.Items, UsageItem{Kind: kind, ID: d.String(), Size: n, Reclaimable: !plan.KeepBlobs[d], LastUsed: used})
	}
	ids := make([]string, 0, len(st.Records))
	for id := range st.Records {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r := st.Records[id]
		if r.rec.Image {
			for _, d := range r.blobs(st.Configs) {
				addBlob(UsageBaseLayers, d, lastUse[id])
			}
		}
	}
	for _, id := range ids {
		for _, d := range st.Records[id].blobs(st.Configs) {
			addBlob(UsageResults, d, lastUse[id])
		}
	}
	keep := make([]digest.Digest, 0, len(opt.KeepBlobs))
	for d := range opt.KeepBlobs {
		keep = append(keep, d)
	}
	sort.Slice(keep, func(i, j int) bool { return keep[i] < keep[j] })
	for _, d := range keep {
		addBlob(UsageImages, d, time.Time{})
	}
	// Blobs nothing refers to (left by a failed build) are results too.
	var rest []digest.Digest
	for d := range sizes {
		if !counted[d] {
			rest = append(rest, d)
		}
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i] < rest[j] })
	for _, d := range rest {
		addBlob(UsageResults, d, time.Time{})
	}
	if err := snapshotUsage(ctx, rep, sn, st, plan); err != nil {
		return nil, err
	}
	return rep, cacheMountUsage(rep, opt.StateDir)
}

// snapshotUsage adds the snapshots, each with its own tree's size.
func snapshotUsage(ctx context.Context, rep *UsageReport, sn snapshot.Snapshotter, st *pruneState, plan *prunePlan) error {
	u, ok := sn.(snapshotUsager)
	if !ok {
		return nil
	}
	drop := map[string]bool{}
	for _, n := range plan.DropSnapshots {
		drop[n] = true
	}
	names := make([]string, 0, len(st.Snapshots))
	for n := range st.Snapshots {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		size, err := u.Usage(ctx, n)
		if err != nil {
			continue // removed meanwhile
		}
		rep.Items = append(rep.Items, UsageItem{Kind: UsageSnapshots, ID: n, Size: size, Reclaimable: drop[n], LastUsed: st.Snapshots[n].Created})
	}
	return nil
}

// cacheMountUsage adds the cache mounts (all reclaimable by prune -a).
func cacheMountUsage(rep *UsageReport, stateDir string) error {
	if stateDir == "" {
		return nil
	}
	dir := filepath.Join(stateDir, "cache-mounts")
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("cache mounts: %w", err)
	}
	for _, e := range ents {
		if e.Name()[0] == '.' {
			continue
		}
		n, err := DiskUsage(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		var mod time.Time
		if fi, err := e.Info(); err == nil {
			mod = fi.ModTime()
		}
		rep.Items = append(rep.Items, UsageItem{Kind: UsageCacheMounts, ID: e.Name(), Size: n, Reclaimable: true, LastUsed: mod})
	}
	return nil
}
