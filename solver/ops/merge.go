package ops

import (
	"context"
	"fmt"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/solver"
)

// mergeOp stacks its inputs (llb.MergeOp): the output snapshot is input
// 0's snapshot with the layers of inputs 1.. applied in order, and its
// record lists the inputs so that an image built on it has their layers as
// they are (see Worker.layerItems).
type mergeOp struct {
	w *Worker
	v *llb.Vertex
}

// CacheMap: every input counts by its cache key, so an input made on
// scratch (a COPY --link) keeps its own key whatever it is merged onto,
// and only the merge itself runs again when the base changes.
func (o *mergeOp) CacheMap(ctx context.Context) (*solver.CacheMap, error) {
	return &solver.CacheMap{Digest: opDigest(o.v)}, nil
}

// Exec prepares a snapshot on input 0 and applies the layers of the other
// inputs: a step's own layer blob (computed once and kept, the same blob
// the image export uses) and an image's layers.
func (o *mergeOp) Exec(ctx context.Context, inputs []solver.Result) (solver.Result, error) {
	if len(inputs) == 0 {
		return nil, fmt.Errorf("%s: merge of no inputs", o.v.Name())
	}
	ids := make([]string, len(inputs))
	recs := make([]*record, len(inputs))
	for i, r := range inputs {
		switch x := r.(type) {
		case nil:
		case *Ref:
			ids[i], recs[i] = x.rec.ID, x.rec
		default:
			return nil, fmt.Errorf("%s: input %d: a %T cannot be merged", o.v.Name(), i, r)
		}
	}
	var layers []cache.Layer
	for _, rec := range recs[1:] {
		if rec == nil {
			continue
		}
		l, err := o.w.materialize(ctx, rec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.v.Name(), err)
		}
		layers = append(layers, l...)
	}
	parent := ""
	if recs[0] != nil {
		// The other inputs only give layer blobs.
		if err := o.w.materializeInputs(ctx, inputs[:1]); err != nil {
			return nil, fmt.Errorf("%s: %w", o.v.Name(), err)
		}
		parent = recs[0].Snapshot
	}
	st, err := o.w.newStep(ctx, "merge-", parent)
	if err != nil {
		return nil, fmt.Errorf("%s: preparing on %q: %w", o.v.Name(), parent, err)
	}
	defer st.discard(ctx)
	for _, l := range layers {
		if err := applyLayer(ctx, o.w.opt.Snapshotter, o.w.opt.Blobs, st.key, l, -1); err != nil {
			return nil, fmt.Errorf("%s: applying layer %s: %w", o.v.Name(), l.Digest, err)
		}
	}
	return st.commit(ctx, &record{Merge: ids, Computed: true})
}

// layerItem is one layer of a result: a layer of a base image as pulled,
// or a step whose own layer (the diff of its snapshot against its parent)
// is computed on demand.
type layerItem struct {
	image *cache.Layer
	step  *record
}

// layerItems lists the layers of rec, base first: an image's layers, a
// step's parent's items and then the step, a merge's inputs' items in
// order.
func (w *Worker) layerItems(rec *record) ([]layerItem, error) {
	var out []layerItem
	var walk func(rec *record, depth int) error
	walk = func(rec *record, depth int) error {
		if depth > 100000 {
			return fmt.Errorf("result %s: record chain too deep", rec.ID)
		}
		switch {
		case rec.Image:
			for i := range rec.ImageLayers {
				out = append(out, layerItem{image: &rec.ImageLayers[i]})
			}
			return nil
		case rec.Merge != nil:
			for _, id := range rec.Merge {
				if id == "" {
					continue
				}
				in, err := w.loadRecord(id)
				if err != nil {
					return err
				}
				if err := walk(in, depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		if rec.Parent != "" {
			p, err := w.loadRecord(rec.Parent)
			if err != nil {
				return err
			}
			if err := walk(p, depth+1); err != nil {
				return err
			}
		}
		out = append(out, layerItem{step: rec})
		return nil
	}
	if err := walk(rec, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// materialize returns the layers of rec, base first, computing the
// missing step layers concurrently; steps that changed nothing have none.
func (w *Worker) materialize(ctx context.Context, rec *record) ([]cache.Layer, error) {
	items, err := w.layerItems(rec)
	if err != nil {
		return nil, err
	}
	if _, err := w.computeLayers(ctx, items); err != nil {
		return nil, err
	}
	return layersOf(items), nil
}
