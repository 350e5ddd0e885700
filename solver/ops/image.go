package ops

import (
	"context"
	"fmt"
	"strings"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/registry"
	"github.com/builderdev/builder/solver"
	digest "github.com/opencontainers/go-digest"
)

type imageOp struct {
	w  *Worker
	v  *llb.Vertex
	op llb.ImageOp
}

// CacheMap: the frontend pins images by digest, so the vertex digest is the
// content. An unpinned reference is resolved here, so a moved tag is a miss.
func (o *imageOp) CacheMap(ctx context.Context) (*solver.CacheMap, error) {
	if strings.Contains(o.op.Ref, "@") {
		return &solver.CacheMap{Digest: o.v.Digest()}, nil
	}
	res, err := o.w.opt.Images.Resolve(ctx, o.op.Ref, o.op.Platform)
	if err != nil {
		return nil, err
	}
	return &solver.CacheMap{Digest: digest.FromString(string(o.v.Digest()) + " " + string(res.ManifestDigest))}, nil
}

// Exec pulls the image and unpacks each layer into a snapshot named by its
// chain ID, so images sharing base layers share snapshots.
func (o *imageOp) Exec(ctx context.Context, _ []solver.Result) (solver.Result, error) {
	res, err := o.w.opt.Images.Resolve(ctx, o.op.Ref, o.op.Platform)
	if err != nil {
		return nil, err
	}
	// The step's log shows the bytes of each layer and its extraction.
	plog := newPullLog(solver.LogWriter(ctx, 1))
	layers, err := o.w.opt.Images.Pull(registry.WithPullProgress(ctx, plog.progress), res)
	if err != nil {
		return nil, err
	}
	parent := ""
	for i, l := range layers {
		name := ChainName(layers[:i+1])
		unpack := func() error { return o.w.unpack(ctx, name, parent, l) }
		if _, err := o.w.opt.Snapshotter.Stat(ctx, name); err != nil {
			err = plog.extracting(l.Digest, unpack)
		} else {
			err = unpack()
		}
		if err != nil {
			return nil, fmt.Errorf("unpacking layer %s of %s: %w", l.Digest, o.op.Ref, err)
		}
		parent = name
	}
	rec := &record{ID: "image-" + res.ManifestDigest.Encoded(), Snapshot: parent, Image: true, ImageLayers: layers, Computed: true}
	if err := o.w.saveRecord(rec); err != nil {
		return nil, err
	}
	return &Ref{w: o.w, rec: rec}, nil
}

// unpack makes committed snapshot name = parent + layer l, unless it exists.
func (w *Worker) unpack(ctx context.Context, name, parent string, l cache.Layer) error {
	unlock := w.layerMu.lock(name)
	defer unlock()
	return UnpackLayer(ctx, w.opt.Snapshotter, w.opt.Blobs, name, parent, l, UnpackOptions{MaxSize: w.opt.MaxLayerSize})
}
