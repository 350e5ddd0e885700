package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/builderdev/builder/executor/pty"
	"github.com/builderdev/builder/exporter"
	"github.com/builderdev/builder/exporter/store"
	"github.com/builderdev/builder/report"
	"github.com/builderdev/builder/snapshot/fsutil"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
	"github.com/builderdev/builder/solver/remotecache"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// outputAttrs lists the attributes each --output type accepts (besides
// type and dest), as buildx names them.
var outputAttrs = map[string][]string{
	"oci":    {"name", "tar", "compression", "compression-level", "force-compression", "oci-mediatypes", "rewrite-timestamp"},
	"docker": {"name", "compression", "compression-level", "force-compression", "oci-mediatypes", "rewrite-timestamp"},
	"image":  {"name", "push", "compression", "compression-level", "force-compression", "oci-mediatypes", "rewrite-timestamp"},
	"local":  {},
	"tar":    {},
}

// validateOutput checks an --output's type, dest and attributes.
func validateOutput(o *Output) error {
	if o.Type == "" {
		return errors.New("type is required (type=oci,dest=FILE)")
	}
	allowed, ok := outputAttrs[o.Type]
	if !ok {
		return fmt.Errorf("output type %q is not supported (supported: oci, docker, image, local, tar)", o.Type)
	}
	switch o.Type {
	case "oci", "docker", "tar":
		if o.Dest == "" {
			return fmt.Errorf("type=%s needs dest=FILE", o.Type)
		}
	case "local":
		if o.Dest == "" {
			return errors.New("type=local needs dest=DIR")
		}
		if o.Dest == stdoutDest {
			return errors.New("type=local writes a directory and cannot stream to stdout (dest=-): use type=tar")
		}
	case "image":
		if o.Dest != "" {
			return errors.New("type=image takes no dest (it stores the image; use name=...)")
		}
	}
	for k, v := range o.Attrs {
		found := false
		for _, a := range allowed {
			found = found || a == k
		}
		if !found {
			return fmt.Errorf("unknown attribute %q for type=%s", k, o.Type)
		}
		switch k {
		case "tar", "push", "force-compression", "oci-mediatypes", "rewrite-timestamp":
			if _, err := strconv.ParseBool(v); err != nil {
				return fmt.Errorf("%s=%q: not a boolean", k, v)
			}
		case "name":
			for _, n := range strings.Split(v, ",") {
				if err := exporter.ValidateName(n); err != nil {
					return fmt.Errorf("name=%q: %w", n, err)
				}
			}
		case "compression-level":
			if _, err := strconv.Atoi(v); err != nil {
				return fmt.Errorf("%s=%q: not a number", k, v)
			}
		}
	}
	if o.Type == "oci" && o.Dest == stdoutDest && !o.boolAttr("tar", true) {
		return errors.New("tar=false writes a directory and cannot stream to stdout (dest=-)")
	}
	_, err := o.layerOptions()
	return err
}

// stdoutDest is the dest that streams an archive to stdout, as in buildx.
const stdoutDest = "-"

// checkStdoutOutputs refuses more than one output streaming to stdout,
// and any when stdout is a terminal (an archive would garble it), before
// the build starts.
func checkStdoutOutputs(outs []Output, stdout io.Writer) error {
	n := 0
	for _, o := range outs {
		if o.Dest == stdoutDest {
			n++
		}
	}
	switch {
	case n > 1:
		return errors.New("--output: only one output can stream to stdout (dest=-)")
	case n == 1:
		if f, ok := stdout.(*os.File); ok && pty.IsTerminal(int(f.Fd())) {
			return errors.New("--output: refusing to write an archive to a terminal (dest=-): redirect stdout to a file or a pipe")
		}
	}
	return nil
}

// describeDest names dest in a progress step.
func describeDest(dest string) string {
	if dest == stdoutDest {
		return "stdout"
	}
	return dest
}

// writeOutput writes an output archive to dest: streamed to stdout for
// dest=-, else atomically to the file (see writeFile).
func writeOutput(dest string, stdout io.Writer, fn func(io.Writer) error) error {
	if dest == stdoutDest {
		return fn(stdout)
	}
	return writeFile(dest, fn)
}

// boolAttr returns attribute k as a bool, def when unset.
func (o Output) boolAttr(k string, def bool) bool {
	v, ok := o.Attrs[k]
	if !ok {
		return def
	}
	b, _ := strconv.ParseBool(v)
	return b
}

// layerOptions is the output's compression.
func (o Output) layerOptions() (ops.LayerOptions, error) {
	lo := ops.LayerOptions{Compression: o.Attrs["compression"], Force: o.boolAttr("force-compression", false),
		RewriteTimestamp: o.boolAttr("rewrite-timestamp", false)}
	if v, ok := o.Attrs["compression-level"]; ok {
		lo.Level, _ = strconv.Atoi(v)
	}
	return lo, lo.Validate()
}

// exportOptions are the exporter options of the output: Docker media
// types when oci-mediatypes=false (the default for type=docker only).
func (o Output) exportOptions() []exporter.Option {
	if !o.boolAttr("oci-mediatypes", o.Type != "docker") {
		return []exporter.Option{exporter.WithDockerMediaTypes()}
	}
	return nil
}

// names are the -t names plus the output's name= names.
func (o Output) names(tags []string) []string {
	names := append([]string(nil), tags...)
	if n := o.Attrs["name"]; n != "" {
		names = append(names, strings.Split(n, ",")...)
	}
	return names
}

// PushImage pushes an exported image to its names (type=image,push=true).
// It is set by the registry push support; while it is nil push=true is an
// error.
var PushImage func(ctx context.Context, img *exporter.Image, names []string, opt []exporter.Option) (v1.Descriptor, error)

// exported is what an export produced, for --iidfile and --metadata-file.
type exported struct {
	configDigest string
	desc         *v1.Descriptor
	names        []string
	// layers are the stored image's layers, for --report.
	layers []report.Layer
}

// exportImage computes the layers of result and writes the image to the
// local store (always: under -t and name= of type=image outputs, or by ID
// only) and to every --output.
func exportImage(ctx context.Context, r solver.Reporter, w *ops.Worker, images *store.Store, result solver.Result, cfg v1.ConfigFile, o BuildOptions) (*exported, error) {
	warnRewriteWithoutEpoch(r, o.Outputs, o.BuildArgs)
	blobs := images.Blobs()
	// The store gets the image as the first type=image output asks, or
	// gzip with OCI media types.
	storeOut := Output{Type: "image", Attrs: map[string]string{}}
	storeNames := append([]string(nil), o.Tags...)
	found := false
	for _, out := range o.Outputs {
		if out.Type == "image" {
			if !found {
				storeOut, found = out, true
			}
			storeNames = append(storeNames, out.names(nil)...)
		}
	}
	imageFor := func(out Output) (*exporter.Image, error) {
		lo, err := out.layerOptions()
		if err != nil {
			return nil, err
		}
		if lo, err = withEpoch(lo, o.BuildArgs); err != nil {
			return nil, err
		}
		var img *exporter.Image
		err = step(r, "exporting layers", func() error {
			c, layers, err := w.ImageWith(ctx, result, cfg, lo)
			img = &exporter.Image{Config: c, Layers: layers, Blobs: blobs, HealthcheckStartInterval: o.healthStartInterval}
			if err == nil && o.inlineCache != nil {
				// --cache-to type=inline: the cache rides in the config.
				var raw []byte
				if raw, err = o.inlineCache(ctx, layers); err == nil {
					img.Extra = []exporter.ConfigField{{Name: remotecache.InlineKey, Value: raw}}
				}
			}
			return err
		})
		return img, err
	}
	img, err := imageFor(storeOut)
	if err != nil {
		return nil, err
	}
	res := &exported{}
	var stored store.Image
	if err := step(r, "naming to "+describeNames(storeNames), func() error {
		var err error
		stored, err = images.Put(ctx, img, storeNames, storeOut.exportOptions()...)
		return err
	}); err != nil {
		return nil, err
	}
	res.configDigest = stored.ID.String()
	res.layers = imageLayers(img.Layers, img.Config.History)
	res.names = stored.Names
	storedDesc := stored.Manifest

	for _, out := range o.Outputs {
		oimg := img
		if out.Type != "local" && out.Type != "tar" && !sameLayers(out, storeOut) {
			if oimg, err = imageFor(out); err != nil {
				return nil, err
			}
		}
		var desc *v1.Descriptor
		switch out.Type {
		case "oci":
			names := out.names(o.Tags)
			if !out.boolAttr("tar", true) {
				err = step(r, "exporting to oci image layout "+out.Dest, func() error {
					d, err := exporter.WriteOCIDir(ctx, out.Dest, oimg, names, out.exportOptions()...)
					desc = &d
					return err
				})
				break
			}
			err = step(r, "exporting to oci image format "+describeDest(out.Dest), func() error {
				return writeOutput(out.Dest, o.stdout(), func(f io.Writer) error {
					d, err := exporter.WriteOCI(ctx, f, oimg, names, out.exportOptions()...)
					desc = &d
					return err
				})
			})
		case "docker":
			err = step(r, "exporting to docker image format "+describeDest(out.Dest), func() error {
				return writeOutput(out.Dest, o.stdout(), func(f io.Writer) error {
					d, err := exporter.WriteDocker(ctx, f, oimg, out.names(o.Tags), out.exportOptions()...)
					desc = &d
					return err
				})
			})
		case "local":
			err = step(r, "copying files to "+out.Dest, func() error { return exporter.WriteLocal(ctx, out.Dest, oimg) })
		case "tar":
			err = step(r, "sending tarball to "+describeDest(out.Dest), func() error {
				return writeOutput(out.Dest, o.stdout(), func(f io.Writer) error {
					// Scratch space next to the file, or in the root for stdout.
					scratch := filepath.Dir(out.Dest)
					if out.Dest == stdoutDest {
						scratch = o.Root
					}
					return exporter.WriteRootfsTar(ctx, f, oimg, scratch)
				})
			})
		case "image":
			d := storedDesc
			if !sameLayers(out, storeOut) {
				var st store.Image
				st, err = images.Put(ctx, oimg, out.names(nil), out.exportOptions()...)
				d = st.Manifest
			}
			desc = &d
			if err == nil && out.boolAttr("push", false) {
				if PushImage == nil {
					return nil, errors.New("--output type=image,push=true: pushing is not available in this build")
				}
				names := out.names(o.Tags)
				if len(names) == 0 {
					return nil, errors.New("--output type=image,push=true needs a name (-t or name=)")
				}
				// PushImage shows one step per name.
				var pd v1.Descriptor
				pd, err = PushImage(ctx, oimg, names, out.exportOptions())
				desc = &pd
			}
		}
		if err != nil {
			return nil, err
		}
		if res.desc == nil && desc != nil {
			res.desc = desc
		}
	}
	if res.desc == nil {
		res.desc = &storedDesc
	}
	return res, nil
}

// sameLayers says whether a and b export the same manifest.
func sameLayers(a, b Output) bool {
	la, _ := a.layerOptions()
	lb, _ := b.layerOptions()
	if la.Compression == "" {
		la.Compression = ops.Gzip
	}
	if lb.Compression == "" {
		lb.Compression = ops.Gzip
	}
	return la == lb && len(a.exportOptions()) == len(b.exportOptions())
}

func describeNames(names []string) string {
	if len(names) == 0 {
		return "local image store"
	}
	return strings.Join(names, ", ")
}

// writeIIDFile writes the image ID as docker build --iidfile does.
func writeIIDFile(path string, e *exported) error {
	return writeFile(path, func(w io.Writer) error {
		_, err := io.WriteString(w, e.configDigest)
		return err
	})
}

// writeJSONFile writes v as indented JSON to path.
func writeJSONFile(path string, v any) error {
	return writeFile(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

// writeFile writes an output file through fsutil.WriteFileAtomicFunc, so a
// failed export never leaves a truncated file; outputs are world-readable.
func writeFile(path string, fn func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomicFunc(path, 0o644, fn)
}
