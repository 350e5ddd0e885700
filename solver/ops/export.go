package ops

import (
	"context"
	"fmt"
	"github.com/klauspost/compress/gzip"
	"io"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/solver"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// emptyTarSize is the size of a tar stream with no entries (two zero
// blocks): a step whose diff is this small changed nothing.
const emptyTarSize = 1024

// Image returns the layers of result r, base first, and cfg with
// rootfs.diff_ids set and the history entries of steps that changed nothing
// marked empty_layer (their layers are dropped, as BuildKit does). Missing
// step layers are computed concurrently and stored.
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
	cfg = markEmptyHistory(cfg, chain)
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
// are computed: steps that changed nothing have none.
func layersOf(items []layerItem) []cache.Layer {
	var layers []cache.Layer
	for _, it := range items {
		switch {
		case it.image != nil:
			layers = append(layers, *it.image)
		case !it.step.Empty:
			layers = append(layers, *it.step.Layer)
		}
	}
	return layers
}

// diffIDs returns the diff IDs of layers, for a config's rootfs.
func diffIDs(layers []cache.Layer) ([]v1.Hash, error) {
	out := make([]v1.Hash, len(layers))
	for i, l := range layers {
		h, err := v1.NewHash(l.DiffID.String())
		if err != nil {
			return nil, fmt.Errorf("layer %s: diff id: %w", l.Digest, err)
		}
		out[i] = h
	}
	return out, nil
}

// markEmptyHistory pairs the steps with the last len(chain) history entries
// that claim a layer and marks those of empty steps as empty layers.
func markEmptyHistory(cfg v1.ConfigFile, chain []*record) v1.ConfigFile {
	h := append([]v1.History(nil), cfg.History...)
	var idx []int
	for i := range h {
		if !h[i].EmptyLayer {
			idx = append(idx, i)
		}
	}
	if len(idx) < len(chain) {
		cfg.History = h
		return cfg
	}
	idx = idx[len(idx)-len(chain):]
	for k, rec := range chain {
		if rec.Empty {
			h[idx[k]].EmptyLayer = true
		}
	}
	cfg.History = h
	return cfg
}

func refRecord(r solver.Result) *record {
	if x, ok := r.(*Ref); ok {
		return x.rec
	}
	return nil
}

// computeLayer diffs a step's snapshot into a gzip layer blob, once.
func (w *Worker) computeLayer(ctx context.Context, rec *record) error {
	unlock := w.layerMu.lock("layer " + rec.ID)
	defer unlock()
	if rec.Computed {
		if rec.Empty || rec.Layer == nil {
			return nil
		}
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
	zw, err := gzip.NewWriterLevel(bw, gzip.DefaultCompression)
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
	if counter.n <= emptyTarSize {
		updated.Empty = true
	} else {
		d, err := bw.Commit("")
		if err != nil {
			return err
		}
		updated.Layer = &cache.Layer{MediaType: string(types.OCILayer), Digest: d, Size: bw.Size(), DiffID: diffID.Digest()}
	}
	if err := w.saveRecord(&updated); err != nil {
		return err
	}
	*rec = updated
	return nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
