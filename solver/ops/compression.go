package ops

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops/internal/pgzip"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// Layer compressions (the buildx compression= values).
const (
	Gzip         = "gzip"
	Zstd         = "zstd"
	Uncompressed = "uncompressed"
)

// LayerOptions say how the layers of an exported image are compressed.
type LayerOptions struct {
	// Compression is Gzip (the default when empty), Zstd or Uncompressed.
	Compression string
	// Level is the compression level (gzip 1-9, zstd 1-22); 0 is the
	// default level.
	Level int
	// Force recompresses the base image's layers too; otherwise only the
	// layers this build made use Compression, as in buildx.
	Force bool
	// RewriteTimestamp clamps the times of the entries of this build's
	// layers (never the base image's) to SourceDateEpoch (Unix seconds),
	// as buildx's rewrite-timestamp=true (see timestamp.go).
	RewriteTimestamp bool
	SourceDateEpoch  int64
}

// Validate checks the compression and the level.
func (o LayerOptions) Validate() error {
	switch o.Compression {
	case "", Gzip:
		if o.Level < 0 || o.Level > 9 {
			return fmt.Errorf("compression-level %d: gzip levels are 0-9", o.Level)
		}
	case Zstd:
		if o.Level < 0 || o.Level > 22 {
			return fmt.Errorf("compression-level %d: zstd levels are 0-22", o.Level)
		}
	case Uncompressed:
	default:
		return fmt.Errorf("compression %q: must be gzip, zstd or uncompressed", o.Compression)
	}
	return nil
}

// ImageWith is Image with the layers in the compression lo asks for. A
// layer in another compression is converted once and the result is kept in
// the cache per (diff ID, compression, level), so a rebuild does not
// recompress.
func (w *Worker) ImageWith(ctx context.Context, r solver.Result, cfg v1.ConfigFile, lo LayerOptions) (v1.ConfigFile, []cache.Layer, error) {
	if err := lo.Validate(); err != nil {
		return cfg, nil, err
	}
	if lo.Compression == "" {
		lo.Compression = Gzip
	}
	cfg, layers, err := w.Image(ctx, r, cfg)
	if err != nil {
		return cfg, nil, err
	}
	// The base image's layers stay as pulled unless Force recompresses
	// them; with RewriteTimestamp this build's layers are rewritten (see
	// timestamp.go), and only those change their diff IDs.
	nbase := 0
	if !lo.Force || lo.RewriteTimestamp {
		if nbase, err = w.baseLayerCount(r); err != nil {
			return cfg, nil, err
		}
	}
	out := append([]cache.Layer(nil), layers...)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range out {
		base := i < nbase
		if base && !lo.Force {
			continue
		}
		g.Go(func() error {
			var l cache.Layer
			var err error
			if lo.RewriteTimestamp && !base {
				l, err = w.rewriteLayer(gctx, out[i], lo)
			} else {
				l, err = w.convertLayer(gctx, out[i], lo)
			}
			if err != nil {
				return fmt.Errorf("compressing layer %s (%s): %w", out[i].Digest, lo.Compression, err)
			}
			out[i] = l
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return cfg, nil, err
	}
	if lo.RewriteTimestamp {
		if cfg.RootFS.DiffIDs, err = diffIDs(out); err != nil {
			return cfg, nil, err
		}
	}
	return cfg, out, nil
}

// baseLayerCount is the number of layers r has from its base image: the
// image layers before the first step of this build.
func (w *Worker) baseLayerCount(r solver.Result) (int, error) {
	rec := refRecord(r)
	if rec == nil {
		return 0, nil
	}
	items, err := w.layerItems(rec)
	if err != nil {
		return 0, err
	}
	n := 0
	for n < len(items) && items[n].image != nil {
		n++
	}
	return n, nil
}

// layerCompression is the compression of a stored layer's media type.
func layerCompression(mt string) string {
	switch types.MediaType(mt) {
	case types.OCIUncompressedLayer, types.DockerUncompressedLayer, types.OCIUncompressedRestrictedLayer:
		return Uncompressed
	case types.OCILayerZStd, cache.DockerZstdLayer:
		return Zstd
	default:
		return Gzip
	}
}

// ConvertLayer returns l in the compression lo asks for (gzip when
// unset), converting it at most once (see convertLayer).
func (w *Worker) ConvertLayer(ctx context.Context, l cache.Layer, lo LayerOptions) (cache.Layer, error) {
	if err := lo.Validate(); err != nil {
		return l, err
	}
	if lo.Compression == "" {
		lo.Compression = Gzip
	}
	return w.convertLayer(ctx, l, lo)
}

// convRecord is the cached conversion of a layer.
type convRecord struct {
	Layer cache.Layer `json:"layer"`
}

// convertLayer returns l in compression lo, converting it at most once.
// Layers already in that compression are kept (a level only matters for
// layers that have to be compressed anyway).
func (w *Worker) convertLayer(ctx context.Context, l cache.Layer, lo LayerOptions) (cache.Layer, error) {
	if layerCompression(l.MediaType) == lo.Compression && lo.Level == 0 {
		return l, nil
	}
	id := fmt.Sprintf("layerconv-%s-%s-%d", l.DiffID.Encoded(), lo.Compression, lo.Level)
	return w.transformLayer(ctx, id, l, lo, func(dst io.Writer, src io.Reader) error {
		_, err := io.Copy(dst, src)
		return err
	}, true)
}

// transformLayer stores layer l's tar passed through transform and
// compressed as lo says, once: the result is recorded under id and reused
// while its blob exists. With sameContent the tar must come out unchanged
// (its diff ID is checked).
func (w *Worker) transformLayer(ctx context.Context, id string, l cache.Layer, lo LayerOptions, transform func(dst io.Writer, src io.Reader) error, sameContent bool) (cache.Layer, error) {
	unlock := w.layerMu.lock(id)
	defer unlock()
	var rec convRecord
	if err := w.opt.Meta.Get(id, &rec); err == nil {
		if n, err := w.opt.Blobs.Stat(rec.Layer.Digest); err == nil && n == rec.Layer.Size {
			return rec.Layer, nil
		}
	} else if !errors.Is(err, cache.ErrNotFound) {
		return l, err
	}
	src, err := w.opt.Blobs.V1Layer(l).Uncompressed()
	if err != nil {
		return l, err
	}
	defer src.Close()
	bw, err := w.opt.Blobs.Writer()
	if err != nil {
		return l, err
	}
	defer bw.Close()
	zw, mt, err := compressor(bw, lo)
	if err != nil {
		return l, err
	}
	diffID := digest.Canonical.Digester()
	if err := transform(io.MultiWriter(zw, diffID.Hash()), cache.ContextReader(ctx, src)); err != nil {
		zw.Close()
		return l, err
	}
	if err := zw.Close(); err != nil {
		return l, err
	}
	if sameContent && diffID.Digest() != l.DiffID {
		return l, fmt.Errorf("layer %s: content has diff id %s, expected %s", l.Digest, diffID.Digest(), l.DiffID)
	}
	d, err := bw.Commit("")
	if err != nil {
		return l, err
	}
	rec.Layer = cache.Layer{MediaType: string(mt), Digest: d, Size: bw.Size(), DiffID: diffID.Digest()}
	if err := w.opt.Meta.Put(id, &rec); err != nil {
		return l, err
	}
	return rec.Layer, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// compressor wraps w in lo's compression and returns the layer media type.
func compressor(w io.Writer, lo LayerOptions) (io.WriteCloser, types.MediaType, error) {
	switch lo.Compression {
	case "", Gzip:
		level := lo.Level
		if level == 0 {
			level = gzip.DefaultCompression
		}
		zw, err := pgzip.NewWriterLevel(w, level)
		return zw, types.OCILayer, err
	case Zstd:
		var eo []zstd.EOption
		if lo.Level > 0 {
			eo = append(eo, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(lo.Level)))
		}
		zw, err := zstd.NewWriter(w, eo...)
		return zw, types.OCILayerZStd, err
	case Uncompressed:
		return nopCloser{w}, types.OCIUncompressedLayer, nil
	}
	return nil, "", fmt.Errorf("compression %q: must be gzip, zstd or uncompressed", lo.Compression)
}
