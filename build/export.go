package build

import (
	"context"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/builderdev/builder/exporter"
	imagestore "github.com/builderdev/builder/exporter/imagestore"
	"github.com/builderdev/builder/frontend/dockerfile"
	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/internal/remotecache"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// exportJob is what exporting one build needs.
type exportJob struct {
	b   *Builder
	r   *collector
	w   *ops.Worker
	req Request
	// inline returns the inline cache maker of platform i (nil when no
	// --cache-to type=inline was asked for).
	inline func(i int) inlineCacheFunc
}

// exportOptions are the exporter options of an output.
func exportOptions(o Output) []exporter.Option {
	if o.DockerMediaTypes {
		return []exporter.Option{exporter.WithDockerMediaTypes()}
	}
	if len(o.Annotations) > 0 {
		return []exporter.Option{exporter.WithAnnotations(o.Annotations)}
	}
	return nil
}

// names are the names the output gives the image: the request's tags,
// which replace its name= as buildx's -t does, else its name=.
func (o Output) names(tags []string) []string {
	if len(tags) > 0 {
		return slices.Clone(tags)
	}
	return slices.Clone(o.Names)
}

// sameLayers says whether a and b export the same manifest.
func sameLayers(a, b Output) bool {
	la, lb := a.Layers, b.Layers
	if la.Compression == "" {
		la.Compression = ops.Gzip
	}
	if lb.Compression == "" {
		lb.Compression = ops.Gzip
	}
	return la == lb && a.DockerMediaTypes == b.DockerMediaTypes && maps.Equal(a.Annotations, b.Annotations)
}

// storeOutput is how the local store gets the image: as the first Image
// output asks, or gzip with OCI media types; under the tags, or without
// them the names of every Image output.
func storeOutput(req Request) (Output, []string) {
	storeOut := Output{Type: Image, Annotations: req.Annotations}
	var names []string
	add := func(ns []string) {
		for _, n := range ns {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	add(req.Tags)
	found := false
	for _, out := range req.Outputs {
		if out.Type == Image {
			if !found {
				storeOut, found = out, true
			}
			add(out.names(req.Tags))
		}
	}
	return storeOut, names
}

// images computes the image of every platform with its layers as out
// asks, as one progress step.
func (j *exportJob) images(ctx context.Context, out Output, solved []solver.Result, results []*dockerfile.Result) ([]*exporter.Image, error) {
	lo, err := withEpoch(out.Layers, j.req.BuildArgs)
	if err != nil {
		return nil, err
	}
	imgs := make([]*exporter.Image, len(results))
	err = step(j.r, "exporting layers", func() error {
		for i, res := range results {
			cfg, err := imageConfig(res.Config, j.req)
			if err != nil {
				return err
			}
			c, layers, err := j.w.ImageWith(ctx, solved[i], cfg, lo)
			if err != nil {
				return err
			}
			imgs[i] = &exporter.Image{Config: c, Layers: layers, Blobs: j.b.images.Blobs(), HealthcheckStartInterval: res.HealthcheckStartInterval}
			if f := j.inline(i); f != nil {
				// --cache-to type=inline: the cache rides in the config.
				raw, err := f(ctx, layers)
				if err != nil {
					return err
				}
				imgs[i].Extra = []exporter.ConfigField{{Name: remotecache.InlineKey, Value: raw}}
			}
		}
		return nil
	})
	return imgs, err
}

// export writes the image of a one-platform build to the local store
// (always: under the tags and the names of Image outputs, or by ID only)
// and to every output.
func (j *exportJob) export(ctx context.Context, solved solver.Result, res *dockerfile.Result) (*Result, error) {
	warnRewriteWithoutEpoch(j.r, j.req.Outputs, j.req.BuildArgs)
	storeOut, storeNames := storeOutput(j.req)
	one := []solver.Result{solved}
	results := []*dockerfile.Result{res}
	imgs, err := j.images(ctx, storeOut, one, results)
	if err != nil {
		return nil, err
	}
	img := imgs[0]
	var stored imagestore.Image
	if err := step(j.r, "naming to "+describeNames(storeNames), func() error {
		var err error
		stored, err = j.b.images.Put(ctx, img, storeNames, exportOptions(storeOut)...)
		return err
	}); err != nil {
		return nil, err
	}
	out := &Result{ImageID: stored.ID, Names: stored.Names}
	var first *v1.Descriptor
	for _, o := range j.req.Outputs {
		oimg := img
		if o.Type != Local && o.Type != Tar && !sameLayers(o, storeOut) {
			oimgs, err := j.images(ctx, o, one, results)
			if err != nil {
				return nil, err
			}
			oimg = oimgs[0]
		}
		desc, err := j.write(ctx, o, oimg, stored.Manifest, sameLayers(o, storeOut))
		if err != nil {
			return nil, err
		}
		if first == nil && desc != nil {
			first = desc
		}
	}
	out.Descriptor = stored.Manifest
	if first != nil {
		out.Descriptor = *first
	}
	j.r.setImage(out, imageLayers(img.Layers, img.Config.History))
	return out, nil
}

// write writes img to one output and returns the descriptor of the
// manifest it wrote (nil for a root filesystem). stored is the local
// store's manifest, the same as out's when sameAsStored.
func (j *exportJob) write(ctx context.Context, out Output, img *exporter.Image, stored v1.Descriptor, sameAsStored bool) (*v1.Descriptor, error) {
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
			func() error { return set(exporter.WriteOCIDir(ctx, out.Dest, img, names, opts...)) },
			func(f io.Writer) error { return set(exporter.WriteOCI(ctx, f, img, names, opts...)) })
	case Docker:
		err = step(j.r, "exporting to docker image format "+describeDest(out), func() error {
			return writeOutput(out, func(f io.Writer) error {
				return set(exporter.WriteDocker(ctx, f, img, out.names(j.req.Tags), opts...))
			})
		})
	case Local:
		err = j.writeLocal(out, func() error { return exporter.WriteLocal(ctx, out.Dest, img) })
	case Tar:
		err = j.writeRootfsTar(out, func(f io.Writer, scratch string) error { return exporter.WriteRootfsTar(ctx, f, img, scratch) })
	case Image:
		d := stored
		if !sameAsStored {
			var st imagestore.Image
			st, err = j.b.images.Put(ctx, img, out.Names, opts...)
			d = st.Manifest
		}
		desc = &d
		if err == nil && out.Push {
			var vimg v1.Image
			if vimg, err = img.V1(opts...); err == nil {
				err = set(j.push(ctx, out, vimg))
			}
		}
	}
	return desc, err
}

// writeOCI writes an OCI output: a layout directory (toDir) or a tarball
// to a file or stream (toTar), each as one progress step.
func (j *exportJob) writeOCI(out Output, toDir func() error, toTar func(io.Writer) error) error {
	if out.OCIDir {
		return step(j.r, "exporting to oci image layout "+out.Dest, toDir)
	}
	return step(j.r, "exporting to oci image format "+describeDest(out), func() error { return writeOutput(out, toTar) })
}

// writeLocal writes a local directory output (fn copies the files) as one
// progress step.
func (j *exportJob) writeLocal(out Output, fn func() error) error {
	return step(j.r, "copying files to "+out.Dest, fn)
}

// writeRootfsTar writes a root filesystem tar output to a file or stream
// as one progress step; toTar unpacks the layers in scratch, a directory
// of the state root that this process's lease owns: recovery removes it
// should the build be killed meanwhile (next to the user's file, nothing
// would remove a killed export's whole root filesystem).
func (j *exportJob) writeRootfsTar(out Output, toTar func(w io.Writer, scratch string) error) error {
	return step(j.r, "sending tarball to "+describeDest(out), func() error {
		scratch, err := j.b.root.TempDir("rootfs")
		if err != nil {
			return err
		}
		defer os.RemoveAll(scratch)
		return writeOutput(out, func(f io.Writer) error { return toTar(f, scratch) })
	})
}

// push pushes m (an image or an index) to the names of an image output
// with push=true; Push shows one step per name.
func (j *exportJob) push(ctx context.Context, out Output, m Manifester) (v1.Descriptor, error) {
	names := out.names(j.req.Tags)
	if len(names) == 0 {
		return v1.Descriptor{}, errNoPushName
	}
	return Push(ctx, j.b.registry, j.r, m, names)
}

func describeNames(names []string) string {
	if len(names) == 0 {
		return "local image store"
	}
	return strings.Join(names, ", ")
}

// describeDest names out's destination in a progress step.
func describeDest(out Output) string {
	if out.Writer != nil {
		return "stdout"
	}
	return out.Dest
}

// writeOutput writes an output archive: streamed to out.Writer when set,
// else atomically to out.Dest (fsutil.WriteOutputFunc: a failed or killed
// export never leaves a truncated file, nor a temp file for good).
func writeOutput(out Output, fn func(io.Writer) error) error {
	if out.Writer != nil {
		return fn(out.Writer)
	}
	return fsutil.WriteOutputFunc(out.Dest, fn)
}
