package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/snapshot"
	digest "github.com/opencontainers/go-digest"
)

// PruneOptions configure Prune.
//
// Without All, Prune removes the dangling build cache: every key that is
// not the newest key of its step, and every result no remaining key needs.
// A step is identified by its display name ("[2/3] RUN make") without
// pinned image digests and by the identities of its inputs (content
// checksums and base image digests do not count), so rebuilding a
// Dockerfile after changing its context or after its base image moved
// leaves the previous build's results dangling, while the newest build
// stays fully cached. Keys saved without a description are never dangling.
//
// With All, every key and result goes.
//
// Results no key needs (left by failed or --no-cache builds) go in both
// modes. In both modes Until keeps what was used (or saved) less than
// Until ago, KeepStorage stops once the cache (counted as the sizes of the
// results' layers) is no larger, removing the least recently used first,
// and nothing the stored images (KeepBlobs) or containers (KeepSnapshots)
// use is removed. A key's last use is recorded by cache.Store.Touch.
type PruneOptions struct {
	All bool
	// Until > 0 removes only what was last used more than Until ago.
	Until time.Duration
	// KeepStorage > 0 removes (least recently used first) only until the
	// cache is no larger than KeepStorage bytes.
	KeepStorage int64
	// Now is the time of the prune (zero = time.Now()). Blobs stored
	// after it are kept.
	Now time.Time
	// KeepBlobs are blobs that must stay (the local image store's).
	KeepBlobs map[digest.Digest]bool
	// KeepSnapshots are snapshots that must stay with their parents (the
	// containers' root filesystems).
	KeepSnapshots []string
	// StateDir is the worker's state directory (Options.StateDir): with
	// All and no Until its cache mounts and HTTP source metadata go too.
	StateDir string
}

// PruneReport says what Prune removed.
type PruneReport struct {
	// Results are the removed result IDs, sorted.
	Results []string
	// Keys, Snapshots, Blobs and CacheMounts count the removed items.
	Keys, Snapshots, Blobs, CacheMounts int
	// BlobBytes is the size of the removed blobs.
	BlobBytes int64
}

// Record ID prefixes of derived layers (see convertLayer and
// rewriteTimestamps): they are not results but conversions of a layer.
// copyreuse- records (copyreuse.go) only name a result a later COPY may
// start from; they hold no layer, so a prune drops them (the next COPY
// then copies everything) and never keeps a snapshot for them.
var derivedPrefixes = []string{"layerconv-", "layerepoch-", copyReusePrefix}

func isDerived(id string) bool {
	for _, p := range derivedPrefixes {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// pinned matches the digest of a pinned image reference in a step name.
var pinned = regexp.MustCompile(`@sha256:[0-9a-f]{64}`)

// stepIdentity computes the identity of every key (see PruneOptions).
func stepIdentity(entries []cache.KeyEntry) map[digest.Digest]string {
	byKey := map[digest.Digest]*cache.KeyEntry{}
	for i := range entries {
		byKey[entries[i].Key] = &entries[i]
	}
	ids := map[digest.Digest]string{}
	var ident func(k digest.Digest, depth int) string
	ident = func(k digest.Digest, depth int) string {
		if id, ok := ids[k]; ok {
			return id
		}
		e := byKey[k]
		if e == nil || e.Info == nil || depth > 1000 {
			ids[k] = "key " + string(k) // unique: never superseded
			return ids[k]
		}
		h := sha256.New()
		if e.Info.Name != "" {
			fmt.Fprintf(h, "name %q\n", pinned.ReplaceAllString(e.Info.Name, ""))
		} else {
			fmt.Fprintf(h, "op %s\n", e.Info.Op)
		}
		for _, in := range e.Info.Inputs {
			switch {
			case !in.Content && byKey[in.Digest] != nil:
				fmt.Fprintf(h, "input %s\n", ident(in.Digest, depth+1))
			case in.Name != "":
				fmt.Fprintf(h, "input name %q\n", pinned.ReplaceAllString(in.Name, ""))
			case in.Content:
				fmt.Fprintf(h, "input content\n")
			default:
				fmt.Fprintf(h, "input %s\n", in.Digest)
			}
		}
		id := hex.EncodeToString(h.Sum(nil))
		ids[k] = id
		return id
	}
	for _, e := range entries {
		ident(e.Key, 0)
	}
	return ids
}

// gcRecord is a stored record as Prune sees it.
type gcRecord struct {
	id      string
	rec     record     // results
	conv    convRecord // derived layers
	derived bool
	created time.Time // of its snapshot; zero when unknown
	// snapSize is the size of its snapshot's own tree (0 when unknown:
	// loaded only for KeepStorage).
	snapSize int64
}

// size is what the record counts for KeepStorage: its own layer blobs
// and the tree of its snapshot (when known).
func (r *gcRecord) size() int64 {
	if r.derived {
		return r.conv.Layer.Size
	}
	n := r.snapSize
	if r.rec.Layer != nil {
		n += r.rec.Layer.Size
	}
	for _, l := range r.rec.ImageLayers {
		n += l.Size
	}
	return n
}

// deps are the records r needs to be loaded and exported.
func (r *gcRecord) deps() []string {
	var out []string
	if r.rec.Parent != "" {
		out = append(out, r.rec.Parent)
	}
	for _, m := range r.rec.Merge {
		if m != "" {
			out = append(out, m)
		}
	}
	return out
}

// blobs are the blobs r owns; configs maps the manifest of a pulled image
// to its config blob (see loadPrune).
func (r *gcRecord) blobs(configs map[digest.Digest]digest.Digest) []digest.Digest {
	if r.derived {
		return []digest.Digest{r.conv.Layer.Digest}
	}
	var out []digest.Digest
	if r.rec.Layer != nil {
		out = append(out, r.rec.Layer.Digest)
	}
	for _, l := range r.rec.ImageLayers {
		out = append(out, l.Digest)
	}
	if md, ok := imageManifest(r.id); ok {
		out = append(out, md)
		if c, ok := configs[md]; ok {
			out = append(out, c)
		}
	}
	return out
}

// imageManifest returns the manifest digest of a pulled image's record
// ("image-<hex>").
func imageManifest(id string) (digest.Digest, bool) {
	hexd, ok := strings.CutPrefix(id, "image-")
	if !ok {
		return "", false
	}
	md := digest.NewDigestFromEncoded(digest.Canonical, hexd)
	return md, md.Validate() == nil
}

// pruneState is everything Prune decides from, read from the stores by
// loadPrune; planPrune works on it alone, so a plan can be tested in
// memory (containerd's GC: mark, then sweep).
type pruneState struct {
	// Snapshots by name.
	Snapshots map[string]snapshot.Info
	// Records by id (results and derived layers).
	Records map[string]*gcRecord
	// Keys are the cache keys.
	Keys []cache.KeyEntry
	// Configs maps the manifest of a pulled image to its config blob.
	Configs map[digest.Digest]digest.Digest
	// HTTPBlobs are the downloads the HTTP source metadata remembers.
	HTTPBlobs []digest.Digest
}

// prunePlan is what a prune removes.
type prunePlan struct {
	// DropKeys are the cache keys to remove.
	DropKeys map[digest.Digest]bool
	// DropRecords are the records to remove, sorted; Results are those of
	// them that are results (not derived layers).
	DropRecords, Results []string
	// DropSnapshots are the snapshots to remove, children first.
	DropSnapshots []string
	// KeepBlobs are the blobs that stay; every other blob stored before
	// the prune started goes.
	KeepBlobs map[digest.Digest]bool
	// DropState removes the cache mounts and the HTTP source metadata.
	DropState bool
}

// Prune removes build cache from store and sn as opt says: it reads the
// stores (loadPrune), decides (planPrune) and removes (applyPrune) in an
// order that never leaves a key without its result: keys, then records,
// then snapshots (children first), then blobs, then (with All) cache
// mounts. The caller must make sure no build uses the store meanwhile.
func Prune(ctx context.Context, store *cache.Store, sn snapshot.Snapshotter, opt PruneOptions) (*PruneReport, error) {
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	st, err := loadPrune(ctx, store, sn, opt.StateDir)
	if err != nil {
		return nil, err
	}
	if opt.KeepStorage > 0 {
		loadSnapshotSizes(ctx, st, sn)
	}
	return applyPrune(ctx, store, sn, planPrune(st, opt), opt)
}

// GC removes the least recently used build cache (as Prune with All and
// KeepStorage) until about free bytes of layers and snapshot trees are
// gone, keeping opt.KeepBlobs and opt.KeepSnapshots; Until and KeepStorage
// of opt are ignored.
func GC(ctx context.Context, store *cache.Store, sn snapshot.Snapshotter, opt PruneOptions, free int64) (*PruneReport, error) {
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	st, err := loadPrune(ctx, store, sn, opt.StateDir)
	if err != nil {
		return nil, err
	}
	loadSnapshotSizes(ctx, st, sn)
	var total int64
	for _, r := range st.Records {
		total += r.size()
	}
	opt.All, opt.Until, opt.KeepStorage = true, 0, max(total-free, 1)
	return applyPrune(ctx, store, sn, planPrune(st, opt), opt)
}

// loadSnapshotSizes sets the snapshot sizes of the records, for
// KeepStorage, when the snapshotter can tell them.
func loadSnapshotSizes(ctx context.Context, st *pruneState, sn snapshot.Snapshotter) {
	u, ok := sn.(snapshotUsager)
	if !ok {
		return
	}
	for _, r := range st.Records {
		if r.derived || r.rec.Snapshot == "" {
			continue
		}
		if n, err := u.Usage(ctx, r.rec.Snapshot); err == nil {
			r.snapSize = n
		}
	}
}

// loadPrune reads what planPrune needs from the stores.
func loadPrune(ctx context.Context, store *cache.Store, sn snapshot.Snapshotter, stateDir string) (*pruneState, error) {
	st := &pruneState{Snapshots: map[string]snapshot.Info{}, Records: map[string]*gcRecord{}, Configs: map[digest.Digest]digest.Digest{}}
	if err := sn.Walk(ctx, func(i snapshot.Info) error { st.Snapshots[i.Name] = i; return nil }); err != nil {
		return nil, fmt.Errorf("prune: listing snapshots: %w", err)
	}
	err := store.Metadata().Walk(func(id string, data json.RawMessage) error {
		r := &gcRecord{id: id, derived: isDerived(id)}
		var err error
		if r.derived {
			err = json.Unmarshal(data, &r.conv)
		} else {
			err = json.Unmarshal(data, &r.rec)
			r.rec.ID = id
			if i, ok := st.Snapshots[r.rec.Snapshot]; ok {
				r.created = i.Created
			}
		}
		if err != nil {
			return nil // damaged: absent (prune deletes damaged records)
		}
		st.Records[id] = r
		if md, ok := imageManifest(id); ok {
			if raw, err := os.ReadFile(store.Blobs().Path(md)); err == nil {
				var m struct {
					Config struct {
						Digest digest.Digest `json:"digest"`
					} `json:"config"`
				}
				if json.Unmarshal(raw, &m) == nil && m.Config.Digest.Validate() == nil {
					st.Configs[md] = m.Config.Digest
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if st.Keys, err = store.Entries(); err != nil {
		return nil, fmt.Errorf("prune: reading keys: %w", err)
	}
	if stateDir != "" {
		if st.HTTPBlobs, err = httpBlobs(stateDir); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// planPrune decides what a prune removes (see PruneOptions), touching no
// store. opt.Now must be set.
func planPrune(st *pruneState, opt PruneOptions) *prunePlan {
	plan := &prunePlan{DropKeys: dropKeys(st, opt)}
	keepRec := keptRecords(st, opt, plan.DropKeys)
	for id, r := range st.Records {
		if keepRec[id] {
			continue
		}
		plan.DropRecords = append(plan.DropRecords, id)
		if !r.derived {
			plan.Results = append(plan.Results, id)
		}
	}
	sort.Strings(plan.DropRecords)
	sort.Strings(plan.Results)
	plan.DropSnapshots = droppedSnapshots(st, keepRec, opt.KeepSnapshots)

	plan.KeepBlobs = map[digest.Digest]bool{}
	for d := range opt.KeepBlobs {
		plan.KeepBlobs[d] = true
	}
	for id := range keepRec {
		for _, d := range st.Records[id].blobs(st.Configs) {
			plan.KeepBlobs[d] = true
		}
	}
	plan.DropState = opt.All && opt.Until <= 0 && opt.KeepStorage <= 0 && opt.StateDir != ""
	if !plan.DropState {
		for _, d := range st.HTTPBlobs {
			plan.KeepBlobs[d] = true
		}
	}
	return plan
}

// old reports whether t is older than opt.Until (always, without Until; a
// zero time is old).
func (opt PruneOptions) old(t time.Time) bool {
	return opt.Until <= 0 || t.IsZero() || t.Before(opt.Now.Add(-opt.Until))
}

// dropKeys chooses the keys to remove: without All those superseded by a
// newer key of the same step, with All every key; only those not used
// within Until; with KeepStorage only the least recently used until the
// rest fits.
func dropKeys(st *pruneState, opt PruneOptions) map[digest.Digest]bool {
	ident := stepIdentity(st.Keys)
	newest := map[string]cache.KeyEntry{}
	for _, e := range st.Keys {
		n, ok := newest[ident[e.Key]]
		if !ok || e.LastUsed().After(n.LastUsed()) {
			newest[ident[e.Key]] = e
		}
	}
	var candidates []cache.KeyEntry
	for _, e := range st.Keys {
		if !opt.All && newest[ident[e.Key]].Key == e.Key {
			continue
		}
		if !opt.old(e.LastUsed()) {
			continue
		}
		candidates = append(candidates, e)
	}
	sort.Slice(candidates, func(i, j int) bool {
		ti, tj := candidates[i].LastUsed(), candidates[j].LastUsed()
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return candidates[i].Key < candidates[j].Key
	})
	if opt.KeepStorage > 0 {
		candidates = candidates[:lruCut(st, candidates, opt.KeepStorage)]
	}
	drop := map[digest.Digest]bool{}
	for _, e := range candidates {
		drop[e.Key] = true
	}
	return drop
}

// lruCut returns how many of candidates (least recently used first) must
// go for the cache (the sizes of the results' layers) to fit in keep.
// Dropping a key frees its result only when no other key points to it.
func lruCut(st *pruneState, candidates []cache.KeyEntry, keep int64) int {
	var total int64
	for _, r := range st.Records {
		total += r.size()
	}
	refs := map[string]int{}
	for _, e := range st.Keys {
		refs[e.ID]++
	}
	n := 0
	for _, e := range candidates {
		if total <= keep {
			break
		}
		n++
		if refs[e.ID]--; refs[e.ID] == 0 {
			if r := st.Records[e.ID]; r != nil {
				total -= r.size()
			}
		}
	}
	return n
}

// keptRecords marks the records that stay: those of the remaining keys
// and those too young, with the records they depend on, and the derived
// layers still of use. Records no key needs (left by failed or --no-cache
// builds) go.
func keptRecords(st *pruneState, opt PruneOptions, drop map[digest.Digest]bool) map[string]bool {
	keep := map[string]bool{}
	var mark func(id string)
	mark = func(id string) {
		r := st.Records[id]
		if r == nil || keep[id] {
			return
		}
		keep[id] = true
		for _, d := range r.deps() {
			mark(d)
		}
	}
	for _, e := range st.Keys {
		if !drop[e.Key] {
			mark(e.ID)
		}
	}
	for id, r := range st.Records {
		if !r.derived && !opt.old(r.created) {
			mark(id)
		}
	}
	// Derived layers stay while their blob is used by an image, or
	// (without All) while a kept result has the layer they convert.
	keptDiffIDs := map[digest.Digest]bool{}
	for id := range keep {
		r := st.Records[id]
		if r.rec.Layer != nil {
			keptDiffIDs[r.rec.Layer.DiffID] = true
		}
		for _, l := range r.rec.ImageLayers {
			keptDiffIDs[l.DiffID] = true
		}
	}
	for id, r := range st.Records {
		if !r.derived {
			continue
		}
		if opt.KeepBlobs[r.conv.Layer.Digest] || (!opt.All && keptDiffIDs[r.conv.Layer.DiffID]) || (opt.All && opt.Until > 0) {
			keep[id] = true
		}
	}
	return keep
}

// droppedSnapshots returns the snapshots no kept record or container
// (keepSnaps) needs, with their parents, children first.
func droppedSnapshots(st *pruneState, keepRec map[string]bool, keepSnaps []string) []string {
	snaps := st.Snapshots
	keep := map[string]bool{}
	keepChain := func(name string) {
		for name != "" && !keep[name] {
			keep[name] = true
			name = snaps[name].Parent
		}
	}
	for id := range keepRec {
		if r := st.Records[id]; !r.derived {
			keepChain(r.rec.Snapshot)
		}
	}
	for _, s := range keepSnaps {
		keepChain(s)
	}
	depth := func(name string) int {
		d := 0
		for seen := 0; name != "" && seen <= len(snaps); seen++ {
			d++
			name = snaps[name].Parent
		}
		return d
	}
	var gone []string
	for name := range snaps {
		if !keep[name] {
			gone = append(gone, name)
		}
	}
	sort.Slice(gone, func(i, j int) bool {
		di, dj := depth(gone[i]), depth(gone[j])
		if di != dj {
			return di > dj
		}
		return gone[i] < gone[j]
	})
	return gone
}

// applyPrune carries out plan: keys, records, snapshots (children first),
// blobs stored before opt.Now that nothing keeps, then the worker state.
func applyPrune(ctx context.Context, store *cache.Store, sn snapshot.Snapshotter, plan *prunePlan, opt PruneOptions) (*PruneReport, error) {
	rep := &PruneReport{}
	if len(plan.DropKeys) > 0 {
		n, err := store.DropKeys(plan.DropKeys)
		if err != nil {
			return rep, fmt.Errorf("prune: %w", err)
		}
		rep.Keys = n
	}
	for _, id := range plan.DropRecords {
		if err := store.Metadata().Delete(id); err != nil && !errors.Is(err, cache.ErrNotFound) {
			return rep, fmt.Errorf("prune: %w", err)
		}
	}
	rep.Results = plan.Results
	for _, name := range plan.DropSnapshots {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := sn.Remove(ctx, name); err != nil && !errors.Is(err, snapshot.ErrNotFound) {
			return rep, fmt.Errorf("prune: removing snapshot %s: %w", name, err)
		}
		rep.Snapshots++
	}
	removed, freed, err := store.Blobs().Prune(func(d digest.Digest) bool { return plan.KeepBlobs[d] }, opt.Now)
	rep.Blobs, rep.BlobBytes = len(removed), freed
	if err != nil {
		return rep, fmt.Errorf("prune: %w", err)
	}
	if plan.DropState {
		n, err := dropWorkerState(opt.StateDir)
		rep.CacheMounts = n
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// dropWorkerState removes the cache mounts and the HTTP source metadata
// under stateDir and returns how many cache mounts it removed.
func dropWorkerState(stateDir string) (int, error) {
	dir := filepath.Join(stateDir, "cache-mounts")
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("prune: %w", err)
	}
	n := 0
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return n, fmt.Errorf("prune: removing cache mount %s: %w", e.Name(), err)
		}
		if !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	if err := os.RemoveAll(filepath.Join(stateDir, "http")); err != nil {
		return n, fmt.Errorf("prune: removing HTTP source metadata: %w", err)
	}
	return n, nil
}

// httpBlobs lists the downloads the HTTP source metadata under stateDir
// remembers.
func httpBlobs(stateDir string) ([]digest.Digest, error) {
	dir := filepath.Join(stateDir, "http")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	var out []digest.Digest
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("prune: %w", err)
		}
		var m httpURLMeta
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		for _, x := range m.Entries {
			out = append(out, x.Digest)
		}
	}
	return out, nil
}

// DiskUsage is the space the files under dir take (hard links counted
// once); a missing dir is 0. See fsutil.DiskUsage.
func DiskUsage(dir string) (int64, error) { return fsutil.DiskUsage(dir) }
