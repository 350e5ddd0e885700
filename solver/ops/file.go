package ops

import (
	"context"
	"fmt"

	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops/internal/fileop"
	digest "github.com/opencontainers/go-digest"
)

type fileOp struct {
	w  *Worker
	v  *llb.Vertex
	op llb.FileOp
}

// CacheMap keys a copy from a local context by the checksum of exactly the
// files it reads; every other input counts by its cache key.
func (o *fileOp) CacheMap(ctx context.Context) (*solver.CacheMap, error) {
	cm := &solver.CacheMap{Digest: opDigest(o.v), Deps: make([]solver.CacheDep, len(o.v.Inputs()))}
	for i, in := range o.v.Inputs() {
		if in == nil || i == o.op.Base {
			continue
		}
		if _, ok := in.Op().(llb.LocalOp); !ok {
			continue
		}
		var copies []*llb.Copy
		for _, a := range o.op.Actions {
			if a.Copy != nil && a.Copy.Src == i {
				copies = append(copies, a.Copy)
			}
		}
		if len(copies) == 0 {
			continue
		}
		cm.Deps[i].ContentFunc = func(ctx context.Context, r solver.Result) (digest.Digest, error) {
			lr, ok := r.(*localResult)
			if !ok {
				return "", fmt.Errorf("%s: input %d is not a local source", o.v.Name(), i)
			}
			var sums string
			for _, c := range copies {
				d, err := fileop.Checksum(ctx, lr.in, c, o.w.opt.Hasher)
				if err != nil {
					return "", withLocation(o.v, err)
				}
				sums += d.String() + "\n"
			}
			return digest.FromString(sums), nil
		}
	}
	return cm, nil
}

func (o *fileOp) Exec(ctx context.Context, inputs []solver.Result) (solver.Result, error) {
	var base solver.Result
	if o.op.Base >= 0 {
		if o.op.Base >= len(inputs) {
			return nil, fmt.Errorf("%s: base input %d out of range", o.v.Name(), o.op.Base)
		}
		base = inputs[o.op.Base]
	}
	// Results imported lazily from a remote cache are unpacked now.
	if err := o.w.materializeInputs(ctx, inputs); err != nil {
		return nil, fmt.Errorf("%s: %w", o.v.Name(), err)
	}
	parent, err := snapshotName(base)
	if err != nil {
		return nil, err
	}
	sn := o.w.opt.Snapshotter
	st, err := o.w.newStep(ctx, "step-", parent)
	if err != nil {
		return nil, err
	}
	defer st.discard(ctx)
	destMounts := st.mounts
	var reuse *fileop.Reuse
	canReuse := o.reusableOp(inputs)
	if canReuse {
		var release func()
		if reuse, release, err = o.cloneForReuse(ctx, st, parent); err != nil {
			return nil, err
		}
		defer release()
	}

	// Mount sets: [0] is the destination, then one per snapshot input.
	sets := [][]snapshot.Mount{destMounts}
	setOf := make([]int, len(inputs))
	fin := make([]fileop.Input, len(inputs))
	for i, r := range inputs {
		setOf[i] = -1
		switch x := r.(type) {
		case nil:
		case *localResult:
			fin[i] = x.in
		case *Ref:
			if i == o.op.Base || x.rec.Snapshot == "" {
				continue
			}
			view := newID("view-")
			m, err := sn.View(ctx, view, x.rec.Snapshot)
			if err != nil {
				return nil, err
			}
			defer sn.Remove(context.WithoutCancel(ctx), view)
			setOf[i] = len(sets)
			sets = append(sets, m)
		default:
			return nil, fmt.Errorf("%s: unexpected input %T", o.v.Name(), r)
		}
	}
	reusable := false
	err = snapshot.WithMounts(ctx, sets, func(roots []string) error {
		for i := range fin {
			if setOf[i] >= 0 {
				fin[i] = fileop.Input{Root: roots[setOf[i]]}
			}
		}
		if !canReuse {
			return fileop.Apply(ctx, roots[0], fin, o.op)
		}
		var err error
		reusable, err = fileop.ApplyReuse(ctx, roots[0], fin, o.op, reuse)
		return err
	})
	if err != nil {
		return nil, withLocation(o.v, err)
	}
	ref, err := st.commit(ctx, &record{Parent: recordID(base)})
	if err != nil || !reusable {
		return ref, err
	}
	// Only a cache, like the hash cache: a failure to save it costs the
	// next run a full copy, not this result.
	_ = o.saveReuse(parent, ref)
	return ref, nil
}
