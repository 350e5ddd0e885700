package ops

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/solver"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// ClampTimestamps copies the tar stream r to w, setting every entry's
// modification, access and change time that is after epoch to epoch (as
// BuildKit's rewrite-timestamp): the layers of two builds of the same
// sources at the same SOURCE_DATE_EPOCH are then byte-identical. Entries are
// streamed one at a time; contents are copied unchanged.
func ClampTimestamps(w io.Writer, r io.Reader, epoch time.Time) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading layer tar: %w", err)
		}
		if hdr.ModTime.After(epoch) {
			hdr.ModTime = epoch
		}
		if hdr.AccessTime.After(epoch) {
			hdr.AccessTime = epoch
		}
		if hdr.ChangeTime.After(epoch) {
			hdr.ChangeTime = epoch
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing %s: %w", hdr.Name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("copying %s: %w", hdr.Name, err)
		}
	}
	return tw.Close()
}

// imageRewritten is ImageWith for lo.RewriteTimestamp: the base image's
// layers are kept (or recompressed with lo.Force), this build's layers are
// rewritten with ClampTimestamps and compressed as lo asks. cfg's diff IDs
// follow the rewritten layers.
func (w *Worker) imageRewritten(ctx context.Context, r solver.Result, cfg v1.ConfigFile, layers []cache.Layer, lo LayerOptions) (v1.ConfigFile, []cache.Layer, error) {
	nbase, err := w.baseLayerCount(r)
	if err != nil {
		return cfg, nil, err
	}
	out := append([]cache.Layer(nil), layers...)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range out {
		if i < nbase && !lo.Force {
			continue
		}
		g.Go(func() error {
			var l cache.Layer
			var err error
			if i < nbase {
				l, err = w.convertLayer(gctx, out[i], LayerOptions{Compression: lo.Compression, Level: lo.Level})
			} else {
				l, err = w.rewriteLayer(gctx, out[i], lo)
			}
			if err != nil {
				return fmt.Errorf("layer %s: %w", out[i].Digest, err)
			}
			out[i] = l
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return cfg, nil, err
	}
	cfg.RootFS.DiffIDs = make([]v1.Hash, len(out))
	for i, l := range out {
		h, err := v1.NewHash(l.DiffID.String())
		if err != nil {
			return cfg, nil, err
		}
		cfg.RootFS.DiffIDs[i] = h
	}
	return cfg, out, nil
}

// rewriteLayer returns l with its times clamped to lo.SourceDateEpoch, in
// lo's compression. The result is cached per (diff ID of the step's layer,
// epoch, compression, level): a plain export never sees a rewritten layer,
// nor a rewrite a plain one, and a rebuild rewrites nothing again.
func (w *Worker) rewriteLayer(ctx context.Context, l cache.Layer, lo LayerOptions) (cache.Layer, error) {
	id := fmt.Sprintf("layerepoch-%s-%d-%s-%d", l.DiffID.Encoded(), lo.SourceDateEpoch, lo.Compression, lo.Level)
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
	epoch := time.Unix(lo.SourceDateEpoch, 0).UTC()
	if err := ClampTimestamps(io.MultiWriter(zw, diffID.Hash()), ctxReader{ctx, src}, epoch); err != nil {
		zw.Close()
		return l, err
	}
	if err := zw.Close(); err != nil {
		return l, err
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

// compressor wraps w in lo's compression and returns the layer media type.
func compressor(w io.Writer, lo LayerOptions) (io.WriteCloser, types.MediaType, error) {
	switch lo.Compression {
	case "", Gzip:
		level := lo.Level
		if level == 0 {
			level = gzip.DefaultCompression
		}
		zw, err := gzip.NewWriterLevel(w, level)
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
