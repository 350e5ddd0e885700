package build

import (
	"context"
	"fmt"
	"io"

	"github.com/builderdev/builder/exporter"
	imagestore "github.com/builderdev/builder/exporter/imagestore"
	"github.com/builderdev/builder/frontend/dockerfile"
	"github.com/builderdev/builder/internal/digestutil"
	"github.com/builderdev/builder/solver"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// exportPlatforms exports a multi-platform build: the images (one per
// platform) go into the local store as one index, then to every output
// as buildx writes them (an index for OCI and Image, one directory per
// platform for Local and Tar).
func (j *exportJob) exportPlatforms(ctx context.Context, solved []solver.Result, results []*dockerfile.Result) (*Result, error) {
	warnRewriteWithoutEpoch(j.r, j.req.Outputs, j.req.BuildArgs)
	storeOut, storeNames := storeOutput(j.req)
	imgs, err := j.images(ctx, storeOut, solved, results)
	if err != nil {
		return nil, err
	}
	var stored imagestore.Image
	if err := step(j.r, "naming to "+describeNames(storeNames), func() error {
		stored, err = j.b.images.PutIndex(ctx, imgs, storeNames, exportOptions(storeOut)...)
		return err
	}); err != nil {
		return nil, err
	}
	desc := stored.Manifest
	for _, out := range j.req.Outputs {
		oimgs := imgs
		if out.Type != Local && out.Type != Tar && !sameLayers(out, storeOut) {
			if oimgs, err = j.images(ctx, out, solved, results); err != nil {
				return nil, err
			}
		}
		d, err := j.writeIndex(ctx, out, oimgs)
		if err != nil {
			return nil, err
		}
		if d != nil && out.Type == Image && out.Push {
			desc = *d
		}
	}
	// As buildx: the image ID and the digest of a multi-platform build
	// are the index's.
	res := &Result{ImageID: digestutil.FromHash(desc.Digest), Descriptor: desc, Names: stored.Names}
	j.r.setImage(res, nil)
	return res, nil
}

// writeIndex writes the images of a multi-platform build to one output
// and returns the index descriptor it wrote, if any.
func (j *exportJob) writeIndex(ctx context.Context, out Output, imgs []*exporter.Image) (*v1.Descriptor, error) {
	var desc *v1.Descriptor
	set := func(d v1.Descriptor, err error) error {
		desc = &d
		return err
	}
	opts := exportOptions(out)
	var err error
	switch out.Type {
	case OCI:
		names := out.names(j.req.Tags)
		err = j.writeOCI(out,
			func() error { return set(exporter.WriteOCIIndexDir(ctx, out.Dest, imgs, names, opts...)) },
			func(f io.Writer) error { return set(exporter.WriteOCIIndex(ctx, f, imgs, names, opts...)) })
	case Local:
		err = j.writeLocal(out, func() error { return exporter.WriteLocalIndex(ctx, out.Dest, imgs) })
	case Tar:
		err = j.writeRootfsTar(out, func(f io.Writer, scratch string) error { return exporter.WriteRootfsTarIndex(ctx, f, imgs, scratch) })
	case Image:
		var st imagestore.Image
		st, err = j.b.images.PutIndex(ctx, imgs, out.Names, opts...)
		desc = &st.Manifest
		if err == nil && out.Push {
			var idx v1.ImageIndex
			if idx, err = exporter.IndexV1(imgs, opts...); err == nil {
				err = set(j.push(ctx, out, idx))
			}
		}
	default:
		err = fmt.Errorf("output type=%s cannot hold a multi-platform image", out.Type)
	}
	return desc, err
}
