package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/snapshot"
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
	layers, err := o.w.opt.Images.Pull(ctx, res)
	if err != nil {
		return nil, err
	}
	parent := ""
	var chain digest.Digest
	for _, l := range layers {
		if chain == "" {
			chain = l.DiffID
		} else {
			chain = digest.FromString(chain.String() + " " + l.DiffID.String())
		}
		name := "layer-" + chain.Encoded()
		if err := o.w.unpack(ctx, name, parent, l); err != nil {
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
	if _, err := w.opt.Snapshotter.Stat(ctx, name); err == nil {
		return nil
	}
	key := newID("unpack-")
	if _, err := w.opt.Snapshotter.Prepare(ctx, key, parent); err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			w.opt.Snapshotter.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	rc, err := w.opt.Blobs.V1Layer(l).Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := w.opt.Snapshotter.Apply(ctx, key, rc); err != nil {
		return err
	}
	if err := w.opt.Snapshotter.Commit(ctx, name, key); err != nil {
		if errors.Is(err, snapshot.ErrAlreadyExists) {
			return nil
		}
		return err
	}
	committed = true
	return nil
}
