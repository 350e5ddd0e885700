package ops

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/builderdev/builder/cache"
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
