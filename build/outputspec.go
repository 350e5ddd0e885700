package build

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/builderdev/builder/exporter"
	"github.com/builderdev/builder/internal/pty"
	"github.com/builderdev/builder/solver/ops"
)

// OutputSpec is one --output value as buildx writes it: a type, a dest
// and the type's attributes. Output turns it into the typed Output.
type OutputSpec struct {
	Type  string
	Dest  string
	Attrs map[string]string
	// Annotations are the --annotation values for the image manifest.
	Annotations map[string]string
}

// ParseOutputSpec parses a buildx --output value: "type=oci,dest=out.tar", or
// a bare path, which means type=local,dest=PATH as in buildx ("-" means
// type=tar,dest=-: dest=- streams the archive to stdout).
func ParseOutputSpec(s string) (OutputSpec, error) {
	if !strings.Contains(s, "=") {
		if s == "-" { // buildx: -o - is a tar of the files on stdout
			return OutputSpec{Type: "tar", Dest: "-", Attrs: map[string]string{}}, nil
		}
		return OutputSpec{Type: "local", Dest: s, Attrs: map[string]string{}}, nil
	}
	o := OutputSpec{Attrs: map[string]string{}}
	for _, f := range SplitCSV(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return o, fmt.Errorf("--output %q: %q is not key=value", s, f)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		switch k {
		case "type":
			o.Type = v
		case "dest":
			o.Dest = v
		default:
			o.Attrs[k] = v
		}
	}
	if o.Type == "registry" { // buildx: type=registry is type=image,push=true
		o.Type, o.Attrs["push"] = "image", "true"
	}
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("--output %q: %w", s, err)
	}
	return o, nil
}

// SplitCSV splits on commas outside double quotes and removes the quotes.
func SplitCSV(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ',' && !quoted:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	return append(out, cur.String())
}

// outputAttrs lists the attributes each --output type accepts (besides
// type and dest), as buildx names them.
var outputAttrs = map[string][]string{
	"oci":    {"name", "tar", "compression", "compression-level", "force-compression", "oci-mediatypes", "rewrite-timestamp"},
	"docker": {"name", "compression", "compression-level", "force-compression", "oci-mediatypes", "rewrite-timestamp"},
	"image":  {"name", "push", "compression", "compression-level", "force-compression", "oci-mediatypes", "rewrite-timestamp"},
	"local":  {},
	"tar":    {},
}

// Validate checks an --output's type, dest and attributes.
func (o *OutputSpec) Validate() error {
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
		if o.Dest == StdoutDest {
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
	if o.Type == "oci" && o.Dest == StdoutDest && !o.boolAttr("tar", true) {
		return errors.New("tar=false writes a directory and cannot stream to stdout (dest=-)")
	}
	_, err := o.layerOptions()
	return err
}

// StdoutDest is the dest that streams an archive to stdout, as in buildx.
const StdoutDest = "-"

// boolAttr returns attribute k as a bool, def when unset.
func (o OutputSpec) boolAttr(k string, def bool) bool {
	v, ok := o.Attrs[k]
	if !ok {
		return def
	}
	b, _ := strconv.ParseBool(v)
	return b
}

// layerOptions is the output's compression.
func (o OutputSpec) layerOptions() (ops.LayerOptions, error) {
	lo := ops.LayerOptions{Compression: o.Attrs["compression"], Force: o.boolAttr("force-compression", false),
		RewriteTimestamp: o.boolAttr("rewrite-timestamp", false)}
	if v, ok := o.Attrs["compression-level"]; ok {
		lo.Level, _ = strconv.Atoi(v)
	}
	return lo, lo.Validate()
}

// Output is the library's form of the output; dest=- streams to stdout.
func (o OutputSpec) Output(stdout io.Writer) (Output, error) {
	lo, err := o.layerOptions()
	if err != nil {
		return Output{}, err
	}
	out := Output{
		Type:   OutputType(o.Type),
		Dest:   o.Dest,
		Push:   o.boolAttr("push", false),
		OCIDir: !o.boolAttr("tar", true),
		Layers: lo,
		// Docker media types when oci-mediatypes=false (the default for
		// type=docker only).
		DockerMediaTypes: !o.ociMediaTypes(),
		Annotations:      o.Annotations,
	}
	if o.Dest == StdoutDest {
		out.Dest, out.Writer = "", stdout
	}
	if n := o.Attrs["name"]; n != "" {
		out.Names = strings.Split(n, ",")
	}
	return out, nil
}

// ociMediaTypes says whether the output uses OCI media types (the
// default but for type=docker).
func (o OutputSpec) ociMediaTypes() bool { return o.boolAttr("oci-mediatypes", o.Type != "docker") }

// ParseAnnotations parses --annotation values: KEY=VALUE or
// manifest:KEY=VALUE (buildx's default type), set on the image manifest
// of every output with OCI media types; it sets them on every output.
func ParseAnnotations(values []string, outs []OutputSpec) (map[string]string, error) {
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
	for i := range outs {
		outs[i].Annotations = m
	}
	return m, nil
}

// ParseOutputSpecs parses every --output value, in order.
func ParseOutputSpecs(specs []string) ([]OutputSpec, error) {
	var out []OutputSpec
	for _, s := range specs {
		o, err := ParseOutputSpec(s)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// CheckStdoutOutputs refuses more than one output streaming to stdout,
// and any when stdout is a terminal (an archive would garble it), before
// the build starts.
func CheckStdoutOutputs(outs []OutputSpec, stdout io.Writer) error {
	n := 0
	for _, o := range outs {
		if o.Dest == StdoutDest {
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
