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
	"syscall"
	"time"

	"github.com/builderdev/builder/cache"
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
// modes. In both modes Until keeps what was saved less than Until ago, KeepStorage
// stops once the cache (counted as the sizes of the results' layers) is no
// larger, removing the oldest first, and nothing the stored images
// (KeepBlobs) or containers (KeepSnapshots) use is removed.
type PruneOptions struct {
	All bool
	// Until > 0 removes only what is older than Until.
	Until time.Duration
	// KeepStorage > 0 removes (oldest first) only until the cache is no
	// larger than KeepStorage bytes.
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
}

// size is what the record counts for KeepStorage: its own layer blobs.
func (r *gcRecord) size() int64 {
	if r.derived {
		return r.conv.Layer.Size
	}
	var n int64
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

// blobs are the blobs r owns.
func (r *gcRecord) blobs(b *cache.BlobStore) []digest.Digest {
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
	if hexd, ok := strings.CutPrefix(r.id, "image-"); ok {
		// The pulled manifest and its config.
		md := digest.NewDigestFromEncoded(digest.Canonical, hexd)
		if md.Validate() == nil {
			out = append(out, md)
			if raw, err := os.ReadFile(b.Path(md)); err == nil {
				var m struct {
					Config struct {
						Digest digest.Digest `json:"digest"`
					} `json:"config"`
				}
				if json.Unmarshal(raw, &m) == nil && m.Config.Digest.Validate() == nil {
					out = append(out, m.Config.Digest)
				}
			}
		}
	}
	return out
}

// Prune removes build cache from store and sn as opt says, in an order
// that never leaves a key without its result: keys, then records, then
// snapshots (children first), then blobs, then (with All) cache mounts. The
// caller must make sure no build uses the store meanwhile.
func Prune(ctx context.Context, store *cache.Store, sn snapshot.Snapshotter, opt PruneOptions) (*PruneReport, error) {
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	cutoff := now.Add(-opt.Until)
	old := func(t time.Time) bool { return opt.Until <= 0 || t.IsZero() || t.Before(cutoff) }

	// Snapshots, for the records' ages and for the removal.
	snaps := map[string]snapshot.Info{}
	if err := sn.Walk(ctx, func(i snapshot.Info) error { snaps[i.Name] = i; return nil }); err != nil {
		return nil, fmt.Errorf("prune: listing snapshots: %w", err)
	}

	// Records.
	recs := map[string]*gcRecord{}
	err := store.Metadata().Walk(func(id string, data json.RawMessage) error {
		r := &gcRecord{id: id, derived: isDerived(id)}
		var err error
		if r.derived {
			err = json.Unmarshal(data, &r.conv)
		} else {
			err = json.Unmarshal(data, &r.rec)
			r.rec.ID = id
			if i, ok := snaps[r.rec.Snapshot]; ok {
				r.created = i.Created
			}
		}
		if err != nil {
			return fmt.Errorf("prune: record %s: %w", id, err)
		}
		recs[id] = r
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Keys: which go.
	entries, err := store.Entries()
	if err != nil {
		return nil, fmt.Errorf("prune: reading keys: %w", err)
	}
	ident := stepIdentity(entries)
	newest := map[string]cache.KeyEntry{}
	for _, e := range entries {
		n, ok := newest[ident[e.Key]]
		if !ok || e.Time.After(n.Time) {
			newest[ident[e.Key]] = e
		}
	}
	var candidates []cache.KeyEntry
	for _, e := range entries {
		if !opt.All && newest[ident[e.Key]].Key == e.Key {
			continue
		}
		if !old(e.Time) {
			continue
		}
		candidates = append(candidates, e)
	}
	sort.Slice(candidates, func(i, j int) bool {
		if !candidates[i].Time.Equal(candidates[j].Time) {
			return candidates[i].Time.Before(candidates[j].Time)
		}
		return candidates[i].Key < candidates[j].Key
	})
	if opt.KeepStorage > 0 {
		var total int64
		for _, r := range recs {
			total += r.size()
		}
		// Oldest first, until the rest fits. Results a later key still
		// points to are not freed by dropping one key.
		refs := map[string]int{}
		for _, e := range entries {
			refs[e.ID]++
		}
		n := 0
		for _, e := range candidates {
			if total <= opt.KeepStorage {
				break
			}
			n++
			if refs[e.ID]--; refs[e.ID] == 0 {
				if r := recs[e.ID]; r != nil {
					total -= r.size()
				}
			}
		}
		candidates = candidates[:n]
	}
	dropKeys := map[digest.Digest]bool{}
	for _, e := range candidates {
		dropKeys[e.Key] = true
	}

	// Records that stay: those of the remaining keys and those too young,
	// with the records they depend on. Records no key needs (left by
	// failed or --no-cache builds) always go.
	keepRec := map[string]bool{}
	var mark func(id string)
	mark = func(id string) {
		r := recs[id]
		if r == nil || keepRec[id] {
			return
		}
		keepRec[id] = true
		for _, d := range r.deps() {
			mark(d)
		}
	}
	for _, e := range entries {
		if !dropKeys[e.Key] {
			mark(e.ID)
		}
	}
	for id, r := range recs {
		if !r.derived && !old(r.created) {
			mark(id)
		}
	}

	// Derived layers stay while their blob is used by an image, or
	// (without All) while a kept result has the layer they convert.
	keptDiffIDs := map[digest.Digest]bool{}
	for id := range keepRec {
		r := recs[id]
		if r.rec.Layer != nil {
			keptDiffIDs[r.rec.Layer.DiffID] = true
		}
		for _, l := range r.rec.ImageLayers {
			keptDiffIDs[l.DiffID] = true
		}
	}
	for id, r := range recs {
		if !r.derived {
			continue
		}
		if opt.KeepBlobs[r.conv.Layer.Digest] || (!opt.All && keptDiffIDs[r.conv.Layer.DiffID]) || (opt.All && opt.Until > 0) {
			keepRec[id] = true
		}
	}

	rep := &PruneReport{}
	// 1. Keys.
	if len(dropKeys) > 0 {
		n, err := store.DropKeys(dropKeys)
		if err != nil {
			return rep, fmt.Errorf("prune: %w", err)
		}
		rep.Keys = n
	}
	// 2. Records.
	for id, r := range recs {
		if keepRec[id] {
			continue
		}
		if err := store.Metadata().Delete(id); err != nil && !errors.Is(err, cache.ErrNotFound) {
			return rep, fmt.Errorf("prune: %w", err)
		}
		if !r.derived {
			rep.Results = append(rep.Results, id)
		}
	}
	sort.Strings(rep.Results)

	// 3. Snapshots: keep those of kept records and containers with their
	// parents; remove the rest, children first.
	keepSnap := map[string]bool{}
	var keepChain func(name string)
	keepChain = func(name string) {
		for name != "" && !keepSnap[name] {
			keepSnap[name] = true
			name = snaps[name].Parent
		}
	}
	for id := range keepRec {
		if r := recs[id]; !r.derived {
			keepChain(r.rec.Snapshot)
		}
	}
	for _, s := range opt.KeepSnapshots {
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
		if !keepSnap[name] {
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
	for _, name := range gone {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := sn.Remove(ctx, name); err != nil && !errors.Is(err, snapshot.ErrNotFound) {
			return rep, fmt.Errorf("prune: removing snapshot %s: %w", name, err)
		}
		rep.Snapshots++
	}

	// 4. Blobs nothing kept refers to, stored before the prune started.
	keepBlob := map[digest.Digest]bool{}
	for d := range opt.KeepBlobs {
		keepBlob[d] = true
	}
	for id := range keepRec {
		for _, d := range recs[id].blobs(store.Blobs()) {
			keepBlob[d] = true
		}
	}
	dropState := opt.All && opt.Until <= 0 && opt.KeepStorage <= 0 && opt.StateDir != ""
	if !dropState && opt.StateDir != "" {
		ds, err := httpBlobs(opt.StateDir)
		if err != nil {
			return rep, err
		}
		for _, d := range ds {
			keepBlob[d] = true
		}
	}
	removed, freed, err := store.Blobs().Prune(func(d digest.Digest) bool { return keepBlob[d] }, now)
	rep.Blobs, rep.BlobBytes = len(removed), freed
	if err != nil {
		return rep, fmt.Errorf("prune: %w", err)
	}

	// 5. Cache mounts and HTTP source metadata.
	if dropState {
		dir := filepath.Join(opt.StateDir, "cache-mounts")
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return rep, fmt.Errorf("prune: %w", err)
		}
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return rep, fmt.Errorf("prune: removing cache mount %s: %w", e.Name(), err)
			}
			if !strings.HasPrefix(e.Name(), ".") {
				rep.CacheMounts++
			}
		}
		if err := os.RemoveAll(filepath.Join(opt.StateDir, "http")); err != nil {
			return rep, fmt.Errorf("prune: removing HTTP source metadata: %w", err)
		}
	}
	return rep, nil
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
// once); a missing dir is 0.
func DiskUsage(dir string) (int64, error) {
	type ino struct{ dev, ino uint64 }
	seen := map[ino]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			k := ino{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
			total += st.Blocks * 512
			return nil
		}
		total += fi.Size()
		return nil
	})
	if err != nil {
		return total, fmt.Errorf("disk usage of %s: %w", dir, err)
	}
	return total, nil
}
