package registry

import (
	"context"
	"io"

	digest "github.com/opencontainers/go-digest"
)

// PullProgress is told how far the download of a blob is: done of total
// bytes, and finished once the blob is stored. It is called from the
// downloading goroutines.
type PullProgress func(d digest.Digest, done, total int64, finished bool)

type pullProgressKey struct{}

// WithPullProgress makes the pulls run with ctx report to fn.
func WithPullProgress(ctx context.Context, fn PullProgress) context.Context {
	return context.WithValue(ctx, pullProgressKey{}, fn)
}

func pullProgressFrom(ctx context.Context) PullProgress {
	fn, _ := ctx.Value(pullProgressKey{}).(PullProgress)
	return fn
}

// progressReader reports the bytes read through it.
type progressReader struct {
	r     io.Reader
	d     digest.Digest
	done  int64
	total int64
	fn    PullProgress
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.done += int64(n)
		p.fn(p.d, p.done, p.total, false)
	}
	return n, err
}
