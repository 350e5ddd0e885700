package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/exporter"
	"github.com/builderdev/builder/exporter/store"
	"github.com/builderdev/builder/frontend/dockerfile"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
	"github.com/builderdev/builder/solver/remotecache"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// buildPlatforms parses --platform: one zero platform (the frontend's
// default, the host's) when unset, else each listed platform once. An
// output that can hold one image only is refused before anything runs.
func buildPlatforms(o BuildOptions) ([]llb.Platform, error) {
	if o.Platform == "" {
		return []llb.Platform{{}}, nil
	}
	ps, err := llb.ParsePlatforms(o.Platform)
	if err != nil {
		return nil, fmt.Errorf("--platform: %w", err)
	}
	if len(ps) > 1 {
		for _, out := range o.Outputs {
			if out.Type == "docker" {
				return nil, fmt.Errorf("--output type=docker: docker exporter does not support exporting manifest lists, use the oci exporter instead (--platform %s builds %d images)", o.Platform, len(ps))
			}
		}
	}
	return ps, nil
}

// convertAll runs the frontend once per platform, as one progress step
// ("[internal] load build definition"): each platform's graph shares the
// vertices that do not depend on it (a FROM --platform=$BUILDPLATFORM
// stage without TARGET* args is the same vertex in each), which the solver
// then runs once. Warnings are reported once, from the first platform.
func convertAll(ctx context.Context, r solver.Reporter, platforms []llb.Platform, opt dockerfile.Options) ([]*dockerfile.Result, error) {
	out := make([]*dockerfile.Result, len(platforms))
	err := step(r, "[internal] load build definition from "+opt.Filename, func() error {
		for i, p := range platforms {
			o := opt
			o.Platform = p
			o.ShowPlatform = len(platforms) > 1
			if i > 0 {
				o.Warn = nil
			}
			res, err := dockerfile.Convert(ctx, o)
			if err != nil {
				return err
			}
			out[i] = res
		}
		return nil
	})
	return out, err
}

// checkPlatforms fails before the build when a RUN is for a platform this
// machine cannot execute (see ops.CheckPlatforms).
func checkPlatforms(results []*dockerfile.Result) error {
	var roots []*llb.Vertex
	for _, r := range results {
		roots = append(roots, r.State)
	}
	return ops.CheckPlatforms(roots...)
}

// solveAll solves every platform's graph at once with one solver, so an
// identical vertex runs once for all (--no-cache's cache mounts emptied
// first, as for one platform).
func solveAll(ctx context.Context, s *solver.Solver, w *ops.Worker, results []*dockerfile.Result) ([]solver.Result, error) {
	out := make([]solver.Result, len(results))
	for _, res := range results {
		if res.State != nil {
			if err := w.PruneNoCacheMounts(res.State); err != nil {
				return nil, err
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, res := range results {
		if res.State == nil {
			continue
		}
		g.Go(func() error {
			r, err := s.Solve(gctx, res.State)
			out[i] = r
			return err
		})
	}
	return out, g.Wait()
}

// inlineCacheFunc returns the inline cache (--cache-to type=inline) of an
// image with the given layers, for its config.
type inlineCacheFunc func(ctx context.Context, layers []cache.Layer) (json.RawMessage, error)

// cacheExportOf is what --cache-to exports: the keyed vertices of every
// platform's graph (each once) and every platform's target result.
func cacheExportOf(s *solver.Solver, results []*dockerfile.Result, solved []solver.Result, keys solver.KeyStore, w *ops.Worker) remotecache.Build {
	b := remotecache.Build{Final: solved[0], KeyStore: keys, Worker: w}
	seen := map[digest.Digest]bool{}
	for i, res := range results {
		if res.State == nil {
			continue
		}
		for _, kv := range s.Keys(res.State) {
			if !seen[kv.Vertex.Digest()] {
				seen[kv.Vertex.Digest()] = true
				b.Keys = append(b.Keys, kv)
			}
		}
		if i > 0 {
			b.Finals = append(b.Finals, solved[i])
		}
	}
	return b
}

// exportPlatforms exports a multi-platform build: the images (one per
// platform) go into the local store as one index, then to every --output
// as buildx writes them (an index for oci and image/registry, one
// directory per platform for local and tar).
func exportPlatforms(ctx context.Context, r solver.Reporter, w *ops.Worker, images *store.Store, solved []solver.Result, results []*dockerfile.Result, o BuildOptions, inline func(i int) inlineCacheFunc) error {
	warnRewriteWithoutEpoch(r, o.Outputs, o.BuildArgs)
	blobs := images.Blobs()
	storeOut, storeNames := storeOutput(o)
	imagesFor := func(out Output) ([]*exporter.Image, error) {
		lo, err := out.layerOptions()
		if err != nil {
			return nil, err
		}
		if lo, err = withEpoch(lo, o.BuildArgs); err != nil {
			return nil, err
		}
		imgs := make([]*exporter.Image, len(results))
		err = step(r, "exporting layers", func() error {
			for i, res := range results {
				cfg, err := imageConfig(res, o)
				if err != nil {
					return err
				}
				c, layers, err := w.ImageWith(ctx, solved[i], cfg, lo)
				if err != nil {
					return err
				}
				imgs[i] = &exporter.Image{Config: c, Layers: layers, Blobs: blobs, HealthcheckStartInterval: res.HealthcheckStartInterval}
				if f := inline(i); f != nil {
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
	imgs, err := imagesFor(storeOut)
	var stored store.Image
	if err != nil {
		return err
	}
	if err := step(r, "naming to "+describeNames(storeNames), func() error {
		stored, err = images.PutIndex(ctx, imgs, storeNames, storeOut.exportOptions()...)
		return err
	}); err != nil {
		return err
	}
	desc := stored.Manifest
	for _, out := range o.Outputs {
		oimgs := imgs
		if out.Type != "local" && out.Type != "tar" && !sameLayers(out, storeOut) {
			if oimgs, err = imagesFor(out); err != nil {
				return err
			}
		}
		d, err := exportPlatformOutput(ctx, r, images, out, oimgs, o)
		if err != nil {
			return err
		}
		if d != nil && out.Type == "image" && out.boolAttr("push", false) {
			desc = *d
		}
	}
	// As buildx: the image ID and containerimage.digest of a
	// multi-platform build are the index's digest.
	e := &exported{desc: &desc, names: stored.Names}
	return writeResultFiles(r, e, o)
}

// exportPlatformOutput writes the images of a multi-platform build to one
// --output and returns the index descriptor it wrote, if any.
func exportPlatformOutput(ctx context.Context, r solver.Reporter, images *store.Store, out Output, imgs []*exporter.Image, o BuildOptions) (*v1.Descriptor, error) {
	var desc *v1.Descriptor
	var err error
	tags := o.Tags
	switch out.Type {
	case "oci":
		names := out.names(tags)
		if !out.boolAttr("tar", true) {
			err = step(r, "exporting to oci image layout "+out.Dest, func() error {
				d, err := exporter.WriteOCIIndexDir(ctx, out.Dest, imgs, names, out.exportOptions()...)
				desc = &d
				return err
			})
			break
		}
		err = step(r, "exporting to oci image format "+describeDest(out.Dest), func() error {
			return writeOutput(out.Dest, o.stdout(), func(f io.Writer) error {
				d, err := exporter.WriteOCIIndex(ctx, f, imgs, names, out.exportOptions()...)
				desc = &d
				return err
			})
		})
	case "local":
		err = step(r, "copying files to "+out.Dest, func() error { return exporter.WriteLocalIndex(ctx, out.Dest, imgs) })
	case "tar":
		err = step(r, "sending tarball to "+describeDest(out.Dest), func() error {
			return writeOutput(out.Dest, o.stdout(), func(f io.Writer) error {
				// Scratch space next to the file, or in the root for stdout.
				scratch := filepath.Dir(out.Dest)
				if out.Dest == stdoutDest {
					scratch = o.Root
				}
				return exporter.WriteRootfsTarIndex(ctx, f, imgs, scratch)
			})
		})
	case "image":
		var st store.Image
		st, err = images.PutIndex(ctx, imgs, out.names(nil), out.exportOptions()...)
		desc = &st.Manifest
		if err == nil && out.boolAttr("push", false) {
			names := out.names(tags)
			if len(names) == 0 {
				return nil, errors.New("--output type=image,push=true needs a name (-t or name=)")
			}
			err = step(r, "pushing "+describeNames(names), func() error {
				d, err := pushIndex(ctx, imgs, names, out.exportOptions())
				desc = &d
				return err
			})
		}
	default:
		err = fmt.Errorf("--output type=%s cannot hold a multi-platform image", out.Type)
	}
	return desc, err
}
