package ops

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/solver/ops/internal/fileop"
	digest "github.com/opencontainers/go-digest"
)

// HTTPSourceEpoch is the time of an HTTP source for SOURCE_DATE_EPOCH=<name>
// (BuildKit's resolveSourceDateEpochFromState): the response's
// Last-Modified when the server sends one, else the newest modification
// time of a regular file when the content is a tar archive (plain or
// compressed), else nil (no epoch). The download goes to the blob store,
// so the HTTP source of the build uses it again.
func (w *Worker) HTTPSourceEpoch(ctx context.Context, op llb.HTTPOp) (*time.Time, error) {
	o := &httpOp{w: w, op: op}
	var e *httpEntry
	var err error
	if op.Checksum != "" {
		sum, perr := digest.Parse(op.Checksum)
		if perr != nil {
			return nil, fmt.Errorf("%s: checksum %q: %w", redactURL(op.URL), op.Checksum, perr)
		}
		e, err = o.fetch(ctx, sum, "")
	} else {
		e, err = o.resolve(ctx)
		if err == nil {
			if _, serr := w.opt.Blobs.Stat(e.Digest); serr != nil {
				lm := e.LastModified
				e, err = o.fetch(ctx, "", e.Digest)
				if err == nil && e.LastModified == "" {
					e.LastModified = lm
				}
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if e.LastModified != "" {
		if t, err := http.ParseTime(e.LastModified); err == nil {
			t = t.UTC()
			return &t, nil
		}
	}
	return w.archiveMaxTime(ctx, e.Digest)
}

// archiveMaxTime is the newest modification time of a regular file of the
// tar archive in blob d; nil when it is not an archive.
func (w *Worker) archiveMaxTime(ctx context.Context, d digest.Digest) (*time.Time, error) {
	f, err := os.Open(w.opt.Blobs.Path(d))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, closer, err := fileop.Decompress(ctx, f)
	if err != nil || r == nil {
		return nil, nil // not an archive BuildKit can read either
	}
	defer closer()
	tr := tar.NewReader(r)
	var max *time.Time
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return max, nil
		}
		if err != nil {
			return nil, nil // not an archive: no epoch, as in BuildKit
		}
		if !hdr.FileInfo().Mode().IsRegular() {
			continue
		}
		if t := hdr.ModTime.UTC(); max == nil || t.After(*max) {
			max = &t
		}
	}
}
