package ops

import (
	"context"
	"fmt"

	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops/internal/fileop"
	digest "github.com/opencontainers/go-digest"
)

type localOp struct {
	w  *Worker
	v  *llb.Vertex
	op llb.LocalOp
}

// localResult is a client directory used in place: nothing is copied until
// a file op reads exactly the files it needs.
type localResult struct {
	in fileop.Input
}

// ID implements solver.Result: local results are never stored.
func (*localResult) ID() string { return "" }

func (o *localOp) CacheMap(ctx context.Context) (*solver.CacheMap, error) {
	return &solver.CacheMap{
		Digest:   o.v.Digest(),
		Volatile: true,
		ResultDigest: func(ctx context.Context, r solver.Result) (digest.Digest, error) {
			lr, ok := r.(*localResult)
			if !ok {
				return "", fmt.Errorf("local source %q: unexpected result %T", o.op.Name, r)
			}
			return fileop.TreeDigest(ctx, lr.in, o.w.opt.Hasher)
		},
	}, nil
}

func (o *localOp) Exec(ctx context.Context, _ []solver.Result) (solver.Result, error) {
	dir, ok := o.w.opt.Locals[o.op.Name]
	if !ok {
		return nil, fmt.Errorf("local source %q was not provided", o.op.Name)
	}
	return &localResult{in: fileop.Input{Root: dir.Path, Excludes: o.op.ExcludePatterns, IgnoreFile: dir.IgnoreFile, Local: true}}, nil
}
