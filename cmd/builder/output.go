package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/executor/pty"
	"github.com/builderdev/builder/exporter"
	"github.com/builderdev/builder/snapshot/fsutil"
	"github.com/builderdev/builder/solver/ops"
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

// build is the library's form of the output; dest=- streams to stdout.
func (o Output) build(stdout io.Writer) (build.Output, error) {
	lo, err := o.layerOptions()
	if err != nil {
		return build.Output{}, err
	}
	out := build.Output{
		Type:   build.OutputType(o.Type),
		Dest:   o.Dest,
		Push:   o.boolAttr("push", false),
		OCIDir: !o.boolAttr("tar", true),
		Layers: lo,
		// Docker media types when oci-mediatypes=false (the default for
		// type=docker only).
		DockerMediaTypes: !o.ociMediaTypes(),
		Annotations:      o.Annotations,
	}
	if o.Dest == stdoutDest {
		out.Dest, out.Writer = "", stdout
	}
	if n := o.Attrs["name"]; n != "" {
		out.Names = strings.Split(n, ",")
	}
	return out, nil
}

// writeIIDFile writes the image ID as docker build --iidfile does.
func writeIIDFile(path string, res *build.Result) error {
	return writeFile(path, func(w io.Writer) error {
		_, err := io.WriteString(w, res.ImageID.String())
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

// ociMediaTypes says whether the output uses OCI media types (the
// default but for type=docker).
func (o Output) ociMediaTypes() bool { return o.boolAttr("oci-mediatypes", o.Type != "docker") }

// parseAnnotations parses --annotation values: KEY=VALUE or
// manifest:KEY=VALUE (buildx's default type), set on the image manifest
// of every output with OCI media types.
func parseAnnotations(values []string, outs []Output) (map[string]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, a := range values {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--annotation %q: want KEY=VALUE", a)
		}
		if typ, key, typed := strings.Cut(k, ":"); typed && !strings.Contains(typ, ".") {
			if typ != "manifest" {
				return nil, fmt.Errorf("--annotation %q: only manifest annotations are supported (the image is one manifest)", a)
			}
			k = key
		}
		m[k] = v
	}
	for _, o := range outs {
		if o.Type != "local" && o.Type != "tar" && !o.ociMediaTypes() {
			return nil, fmt.Errorf("--annotation: output type=%s uses Docker media types, whose manifests have no annotations (set oci-mediatypes=true)", o.Type)
		}
	}
	return m, nil
}
