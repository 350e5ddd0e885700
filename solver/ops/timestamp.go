package ops

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/solver"
	v1 "github.com/google/go-containerregistry/pkg/v1"
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
	epoch := time.Unix(lo.SourceDateEpoch, 0).UTC()
	return w.transformLayer(ctx, id, l, lo, func(dst io.Writer, src io.Reader) error {
		return ClampTimestamps(dst, src, epoch)
	}, false)
}
