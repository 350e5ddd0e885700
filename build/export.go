package build

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/exporter"
	imagestore "github.com/builderdev/builder/exporter/store"
	"github.com/builderdev/builder/snapshot/fsutil"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
	"github.com/builderdev/builder/solver/remotecache"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// exportJob is what exporting one build needs.
type exportJob struct {
	b      *Builder
	r      *collector
	w      *ops.Worker
	result solver.Result
	cfg    v1.ConfigFile
	req    Request
	// healthStartInterval is HEALTHCHECK --start-interval, which the
	// exporter adds to the config.
	healthStartInterval time.Duration
	// inlineCache, for a --cache-to type=inline, returns the cache to put
	// into the config of an image with the given layers.
	inlineCache func(ctx context.Context, layers []cache.Layer) (json.RawMessage, error)
}

// exportOptions are the exporter options of an output.
func exportOptions(o Output) []exporter.Option {
	if o.DockerMediaTypes {
		return []exporter.Option{exporter.WithDockerMediaTypes()}
	}
	return nil
}

// names are the request's tags plus the output's names.
func (o Output) names(tags []string) []string {
	return append(append([]string(nil), tags...), o.Names...)
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
	return la == lb && a.DockerMediaTypes == b.DockerMediaTypes
}

// image computes the image's layers as out asks.
func (j *exportJob) image(ctx context.Context, out Output) (*exporter.Image, error) {
	lo, err := withEpoch(out.Layers, j.req.BuildArgs)
	if err != nil {
		return nil, err
	}
	var img *exporter.Image
	err = step(j.r, "exporting layers", func() error {
		c, layers, err := j.w.ImageWith(ctx, j.result, j.cfg, lo)
		img = &exporter.Image{Config: c, Layers: layers, Blobs: j.b.images.Blobs(), HealthcheckStartInterval: j.healthStartInterval}
		if err == nil && j.inlineCache != nil {
			// --cache-to type=inline: the cache rides in the config.
			var raw []byte
			if raw, err = j.inlineCache(ctx, layers); err == nil {
				img.Extra = []exporter.ConfigField{{Name: remotecache.InlineKey, Value: raw}}
			}
		}
		return err
	})
	return img, err
}

// export writes the image to the local store (always: under the tags and
// the names of Image outputs, or by ID only) and to every output.
func (j *exportJob) export(ctx context.Context) (*Result, error) {
	warnRewriteWithoutEpoch(j.r, j.req.Outputs, j.req.BuildArgs)
	// The store gets the image as the first Image output asks, or gzip
	// with OCI media types.
	storeOut := Output{Type: Image}
	storeNames := append([]string(nil), j.req.Tags...)
	found := false
	for _, out := range j.req.Outputs {
		if out.Type == Image {
			if !found {
				storeOut, found = out, true
			}
			storeNames = append(storeNames, out.Names...)
		}
	}
	img, err := j.image(ctx, storeOut)
	if err != nil {
		return nil, err
	}
	var stored imagestore.Image
	if err := step(j.r, "naming to "+describeNames(storeNames), func() error {
		var err error
		stored, err = j.b.images.Put(ctx, img, storeNames, exportOptions(storeOut)...)
		return err
	}); err != nil {
		return nil, err
	}
	res := &Result{ImageID: stored.ID, Names: stored.Names}
	var first *v1.Descriptor
	for _, out := range j.req.Outputs {
		oimg := img
		if out.Type != Local && out.Type != Tar && !sameLayers(out, storeOut) {
			if oimg, err = j.image(ctx, out); err != nil {
				return nil, err
			}
		}
		desc, err := j.write(ctx, out, oimg, stored.Manifest, sameLayers(out, storeOut))
		if err != nil {
			return nil, err
		}
		if first == nil && desc != nil {
			first = desc
		}
	}
	res.Descriptor = stored.Manifest
	if first != nil {
		res.Descriptor = *first
	}
	j.r.setImage(res, imageLayers(img.Layers, img.Config.History))
	return res, nil
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
		if out.OCIDir {
			err = step(j.r, "exporting to oci image layout "+out.Dest, func() error {
				return set(exporter.WriteOCIDir(ctx, out.Dest, img, names, opts...))
			})
			break
		}
		err = step(j.r, "exporting to oci image format "+describeDest(out), func() error {
			return writeOutput(out, func(f io.Writer) error { return set(exporter.WriteOCI(ctx, f, img, names, opts...)) })
		})
	case Docker:
		err = step(j.r, "exporting to docker image format "+describeDest(out), func() error {
			return writeOutput(out, func(f io.Writer) error {
				return set(exporter.WriteDocker(ctx, f, img, out.names(j.req.Tags), opts...))
			})
		})
	case Local:
		err = step(j.r, "copying files to "+out.Dest, func() error { return exporter.WriteLocal(ctx, out.Dest, img) })
	case Tar:
		err = step(j.r, "sending tarball to "+describeDest(out), func() error {
			return writeOutput(out, func(f io.Writer) error {
				// Scratch space next to the file, or in the root for a stream.
				scratch := filepath.Dir(out.Dest)
				if out.Writer != nil {
					scratch = j.b.root.WorkerDir()
				}
				return exporter.WriteRootfsTar(ctx, f, img, scratch)
			})
		})
	case Image:
		d := stored
		if !sameAsStored {
			var st imagestore.Image
			st, err = j.b.images.Put(ctx, img, out.Names, opts...)
			d = st.Manifest
		}
		desc = &d
		if err == nil && out.Push {
			names := out.names(j.req.Tags)
			if len(names) == 0 {
				return nil, errors.New("--output type=image,push=true needs a name (-t or name=)")
			}
			// Push shows one step per name.
			var vimg v1.Image
			if vimg, err = img.V1(opts...); err == nil {
				err = set(Push(ctx, j.b.registry, j.r, vimg, names))
			}
		}
	}
	return desc, err
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
// else atomically to out.Dest (see writeFile).
func writeOutput(out Output, fn func(io.Writer) error) error {
	if out.Writer != nil {
		return fn(out.Writer)
	}
	return writeFile(out.Dest, fn)
}

// writeFile writes an output file through fsutil.WriteFileAtomicFunc, so a
// failed export never leaves a truncated file; outputs are world-readable.
func writeFile(path string, fn func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomicFunc(path, 0o644, fn)
}
