package ops

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/digestutil"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops/internal/pgzip"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// emptyTarSize is the size of a tar stream with no entries (two zero
// blocks): a step whose diff is this small changed nothing.
const emptyTarSize = 1024

// emptyLayerGzip is the gzip stream of an empty tar exactly as Go's
// compress/gzip writes it at the default level: the 32-byte layer
// sha256:4f4fb700ef54... that BuildKit exports for a step that changed
// nothing. Writing these bytes (instead of our compressor's) gives such a
// step the same layer digest as BuildKit.
var emptyLayerGzip = []byte{
	0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x62, 0x18, 0x05, 0xa3, 0x60, 0x14,
	0x8c, 0x58, 0x00, 0x08, 0x00, 0x00, 0xff, 0xff, 0x2e, 0xaf, 0xb5, 0xef, 0x00, 0x04, 0x00, 0x00,
}

// Image returns the layers of result r, base first, and cfg with
// rootfs.diff_ids set. A step that changed nothing keeps an empty layer, as
// BuildKit does. Missing step layers are computed concurrently and stored.
func (w *Worker) Image(ctx context.Context, r solver.Result, cfg v1.ConfigFile) (v1.ConfigFile, []cache.Layer, error) {
	rec := refRecord(r)
	if r != nil && rec == nil {
		return cfg, nil, fmt.Errorf("result %T is not an image", r)
	}
	var items []layerItem
	if rec != nil {
		var err error
		if items, err = w.layerItems(rec); err != nil {
			return cfg, nil, err
		}
	}
	chain, err := w.computeLayers(ctx, items)
	if err != nil {
		return cfg, nil, err
	}
	layers := layersOf(items)
	w.stampLegacy(chain)
	cfg = historyTimes(stepTimes(cfg, chain))
	cfg.RootFS.Type = "layers"
	if cfg.RootFS.DiffIDs, err = diffIDs(layers); err != nil {
		return cfg, nil, err
	}
	return cfg, layers, nil
}

// computeLayers computes the missing step layers of items concurrently, each
// step once, and returns the steps in build order. A merge contributes its
// inputs' layers as they are (a COPY --link layer made on scratch), never a
// diff of its own.
func (w *Worker) computeLayers(ctx context.Context, items []layerItem) ([]*record, error) {
	var chain []*record
	for _, it := range items {
		if it.step != nil {
			chain = append(chain, it.step)
		}
	}
	seen := map[string]bool{}
	g, gctx := errgroup.WithContext(ctx)
	for _, rec := range chain {
		if seen[rec.ID] {
			continue
		}
		seen[rec.ID] = true
		g.Go(func() error { return w.computeLayer(gctx, rec) })
	}
	return chain, g.Wait()
}

// layersOf returns the layers of items, base first, once their step layers
// are computed.
func layersOf(items []layerItem) []cache.Layer {
	var layers []cache.Layer
	for _, it := range items {
		if it.image != nil {
			layers = append(layers, *it.image)
		} else {
			layers = append(layers, *it.step.Layer)
		}
	}
	return layers
}

// diffIDs returns the diff IDs of layers, for a config's rootfs.
func diffIDs(layers []cache.Layer) ([]v1.Hash, error) {
	out := make([]v1.Hash, len(layers))
	for i, l := range layers {
		h, err := digestutil.ToHash(l.DiffID)
		if err != nil {
			return nil, fmt.Errorf("layer %s: diff id: %w", l.Digest, err)
		}
		out[i] = h
	}
	return out, nil
}

// stepTimes pairs the steps with the last len(chain) history entries that
// claim a layer and gives those without a time the time their step's
// result was made.
func stepTimes(cfg v1.ConfigFile, chain []*record) v1.ConfigFile {
	h := append([]v1.History(nil), cfg.History...)
	var idx []int
	for i := range h {
		if !h[i].EmptyLayer {
			idx = append(idx, i)
		}
	}
	if len(idx) >= len(chain) {
		idx = idx[len(idx)-len(chain):]
		for k, rec := range chain {
			if h[idx[k]].Created.IsZero() && !rec.Created.IsZero() {
				h[idx[k]].Created = v1.Time{Time: rec.Created}
			}
		}
	}
	cfg.History = h
	return cfg
}

// historyTimes completes the times of cfg as BuildKit's exporter does, so
// that they come from the results, never from the clock of the export:
// history entries without a time (metadata steps such as ENV) get the time
// of the first step of this build that has one when they come before it,
// else the time of the entry before them; the config's created time, when
// unset, is the time of the last history entry. A cached rebuild thus
// reproduces the config, and so the image digest, of the build that made
// its results.
func historyTimes(cfg v1.ConfigFile) v1.ConfigFile {
	h := append([]v1.History(nil), cfg.History...)
	var created v1.Time
	missing := false
	for _, e := range h {
		if e.Created.IsZero() {
			missing = true
			continue
		}
		created = e.Created
		if missing {
			break
		}
	}
	missing = false
	for i := range h {
		if !h[i].Created.IsZero() {
			if missing {
				created = h[i].Created
			}
			continue
		}
		missing = true
		h[i].Created = created
	}
	cfg.History = h
	if cfg.Created.IsZero() && len(h) > 0 {
		cfg.Created = h[len(h)-1].Created
	}
	if cfg.Created.IsZero() {
		// Nothing made a layer, not even the base (FROM scratch and
		// metadata only): the time of this build, as before.
		cfg.Created = v1.Time{Time: time.Now().UTC()}
		for i := range cfg.History {
			cfg.History[i].Created = cfg.Created
		}
	}
	return cfg
}

// stampLegacy gives the step results of chain stored before results kept
// their creation time the time of this export, and keeps it: their next
// export is then stable too.
func (w *Worker) stampLegacy(chain []*record) {
	for _, rec := range chain {
		if !rec.Created.IsZero() {
			continue
		}
		unlock := w.layerMu.lock("layer " + rec.ID)
		if rec.Created.IsZero() {
			updated := *rec
			updated.Created = time.Now().UTC()
			if w.saveRecord(&updated) == nil {
				*rec = updated
			}
		}
		unlock()
	}
}

func refRecord(r solver.Result) *record {
	if x, ok := r.(*Ref); ok {
		return x.rec
	}
	return nil
}

// computeLayer diffs a step's snapshot into a gzip layer blob, once,
// compressing on all cores (pgzip: the bytes do not depend on the machine).
func (w *Worker) computeLayer(ctx context.Context, rec *record) error {
	unlock := w.layerMu.lock("layer " + rec.ID)
	defer unlock()
	// Records of older versions marked an empty step without a layer.
	if rec.Computed && rec.Layer != nil {
		err := w.opt.Blobs.Verify(rec.Layer.Digest, rec.Layer.Size)
		if err == nil {
			return nil
		}
		// Damaged or gone: the snapshot still has the files.
		w.warn(fmt.Sprintf("layer %s of a cached step is missing or damaged: computing it again (%v)", rec.Layer.Digest, err))
	}
	bw, err := w.opt.Blobs.Writer()
	if err != nil {
		return err
	}
	defer bw.Close()
	diffID := digest.Canonical.Digester()
	counter := &countWriter{}
	zw, err := pgzip.NewWriterLevel(bw, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	tw := io.MultiWriter(zw, diffID.Hash(), counter)
	if err := w.opt.Snapshotter.Diff(ctx, rec.Snapshot, tw); err != nil {
		return fmt.Errorf("computing layer of %s: %w", rec.ID, err)
	}
	if err := zw.Close(); err != nil {
		return err
	}
	updated := *rec
	updated.Computed = true
	updated.Empty = counter.n <= emptyTarSize
	if updated.Empty {
		if bw, err = w.emptyLayerWriter(bw); err != nil {
			return err
		}
		defer bw.Close()
	}
	d, err := bw.Commit("")
	if err != nil {
		return err
	}
	updated.Layer = &cache.Layer{MediaType: string(types.OCILayer), Digest: d, Size: bw.Size(), DiffID: diffID.Digest()}
	if err := w.saveRecord(&updated); err != nil {
		return err
	}
	*rec = updated
	return nil
}

// emptyLayerWriter drops what old holds and returns a writer holding
// emptyLayerGzip instead.
func (w *Worker) emptyLayerWriter(old *cache.BlobWriter) (*cache.BlobWriter, error) {
	old.Close()
	bw, err := w.opt.Blobs.Writer()
	if err != nil {
		return nil, err
	}
	if _, err := bw.Write(emptyLayerGzip); err != nil {
		bw.Close()
		return nil, err
	}
	return bw, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
