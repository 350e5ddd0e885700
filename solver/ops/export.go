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
	if _, err := w.computeLayers(ctx, items); err != nil {
		return cfg, nil, err
	}
	layers := layersOf(items)
	cfg.RootFS.Type = "layers"
	var err error
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
		h, err := v1.NewHash(l.DiffID.String())
		if err != nil {
			return nil, fmt.Errorf("layer %s: diff id: %w", l.Digest, err)
		}
		out[i] = h
	}
	return out, nil
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
	// Records of older versions marked an empty step without a layer.
	if rec.Computed && rec.Layer != nil {
		return nil
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
