package remotecache

import (
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Export is one --cache-to.
type Export struct {
	// Type is "registry", "local" or "inline".
	Type string
	// Ref is the registry reference (type=registry).
	Ref string
	// Dest is the OCI layout directory (type=local) and Tag the name of
	// the cache in it ("latest" by default).
	Dest string
	Tag  string
	// Mode is "min" (the results the final image is made of) or "max"
	// (every step of every stage built).
	Mode string
	// Compression of the layers: gzip (default), zstd or uncompressed;
	// Level is compression-level (0 = default) and Force
	// (force-compression) recompresses layers already compressed otherwise,
	// as the image outputs do.
	Compression string
	Level       int
	Force       bool
	// ImageManifest writes an image manifest instead of an index.
	ImageManifest bool
	// OCIMediaTypes (default true) uses OCI media types, else Docker's.
	OCIMediaTypes bool
	// IgnoreError turns a failed export into a warning.
	IgnoreError bool
	// CacheMounts (mode=max) also exports the content of the build's
	// RUN --mount=type=cache mounts.
	CacheMounts bool
}

// Import is one --cache-from.
type Import struct {
	// Type is "registry" or "local".
	Type string
	// Ref is the registry reference: a cache artifact or an image with
	// inline cache.
	Ref string
	// Src is the OCI layout directory (type=local), Tag the cache in it
	// and Digest, when set, the manifest to use instead of Tag's.
	Src    string
	Tag    string
	Digest string
}

// String is the import as the user wrote it, for messages.
func (i Import) String() string {
	if i.Type == "local" {
		return "type=local,src=" + i.Src
	}
	return i.Ref
}

// String is the export as the user would write it, for messages.
func (e Export) String() string {
	switch e.Type {
	case "local":
		return "type=local,dest=" + e.Dest
	case "inline":
		return "type=inline"
	}
	return e.Ref
}

// parseCSV splits buildx's comma-separated key=value syntax. A value
// without "=" is a registry reference.
func parseCSV(s string) (map[string]string, error) {
	r := csv.NewReader(strings.NewReader(s))
	fields, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	m := map[string]string{}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			if len(fields) != 1 {
				return nil, fmt.Errorf("%q: %q is not key=value", s, f)
			}
			m["type"], m["ref"] = "registry", f
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%q: %s given twice", s, k)
		}
		m[k] = v
	}
	if m["type"] == "" {
		m["type"] = "registry"
	}
	return m, nil
}

func boolAttr(m map[string]string, k string, def bool) (bool, error) {
	v, ok := m[k]
	if !ok {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: not a boolean", k, v)
	}
	return b, nil
}

// exportAttrs are the attributes --cache-to takes per type.
var exportAttrs = map[string][]string{
	"registry": {"ref", "mode", "compression", "compression-level", "force-compression", "image-manifest", "oci-mediatypes", "ignore-error", "cache-mounts"},
	"local":    {"dest", "tag", "mode", "compression", "compression-level", "force-compression", "image-manifest", "oci-mediatypes", "ignore-error", "cache-mounts"},
	"inline":   {"mode"},
}

// ParseExport parses a --cache-to value, e.g.
// "type=registry,ref=reg/app:cache,mode=max".
func ParseExport(s string) (Export, error) {
	m, err := parseCSV(s)
	if err != nil {
		return Export{}, fmt.Errorf("--cache-to %w", err)
	}
	e := Export{Type: m["type"], Ref: m["ref"], Dest: m["dest"], Tag: m["tag"], Mode: m["mode"], Compression: m["compression"]}
	if err := checkAttrs(m, exportAttrs, e.Type); err != nil {
		return Export{}, fmt.Errorf("--cache-to %q: %w", s, err)
	}
	for _, b := range []struct {
		k   string
		p   *bool
		def bool
	}{{"image-manifest", &e.ImageManifest, false}, {"oci-mediatypes", &e.OCIMediaTypes, true}, {"ignore-error", &e.IgnoreError, false}, {"cache-mounts", &e.CacheMounts, false}} {
		if *b.p, err = boolAttr(m, b.k, b.def); err != nil {
			return Export{}, fmt.Errorf("--cache-to %q: %w", s, err)
		}
	}
	if v, ok := m["compression-level"]; ok {
		if e.Level, err = strconv.Atoi(v); err != nil {
			return Export{}, fmt.Errorf("--cache-to %q: compression-level=%q: not a number", s, v)
		}
	}
	if e.Force, err = boolAttr(m, "force-compression", false); err != nil {
		return Export{}, fmt.Errorf("--cache-to %q: %w", s, err)
	}
	if err := e.validate(); err != nil {
		return Export{}, fmt.Errorf("--cache-to %q: %w", s, err)
	}
	return e, nil
}

func (e *Export) validate() error {
	switch e.Mode {
	case "":
		e.Mode = "min"
	case "min", "max":
	default:
		return fmt.Errorf("mode %q: must be min or max", e.Mode)
	}
	switch e.Compression {
	case "":
		e.Compression = "gzip"
	case "gzip", "zstd", "uncompressed":
	default:
		return fmt.Errorf("compression %q: must be gzip, zstd or uncompressed", e.Compression)
	}
	if e.Compression == "zstd" && !e.OCIMediaTypes {
		return errors.New("compression=zstd needs oci-mediatypes=true")
	}
	if e.CacheMounts && e.Mode != "max" {
		return errors.New("cache-mounts=true needs mode=max")
	}
	switch e.Type {
	case "registry":
		if e.Ref == "" {
			return errors.New("type=registry needs ref=REF")
		}
	case "local":
		if e.Dest == "" {
			return errors.New("type=local needs dest=DIR")
		}
		if e.Tag == "" {
			e.Tag = "latest"
		}
	case "inline":
	}
	return nil
}

var importAttrs = map[string][]string{
	"registry": {"ref"},
	"local":    {"src", "tag", "digest"},
}

// ParseImport parses a --cache-from value: "type=registry,ref=REF",
// "type=local,src=DIR[,tag=T|digest=D]" or a bare registry reference (a
// cache artifact or an image exported with type=inline).
func ParseImport(s string) (Import, error) {
	m, err := parseCSV(s)
	if err != nil {
		return Import{}, fmt.Errorf("--cache-from %w", err)
	}
	i := Import{Type: m["type"], Ref: m["ref"], Src: m["src"], Tag: m["tag"], Digest: m["digest"]}
	if err := checkAttrs(m, importAttrs, i.Type); err != nil {
		return Import{}, fmt.Errorf("--cache-from %q: %w", s, err)
	}
	switch i.Type {
	case "registry":
		if i.Ref == "" {
			return Import{}, fmt.Errorf("--cache-from %q: type=registry needs ref=REF", s)
		}
	case "local":
		if i.Src == "" {
			return Import{}, fmt.Errorf("--cache-from %q: type=local needs src=DIR", s)
		}
		if i.Tag == "" {
			i.Tag = "latest"
		}
	}
	return i, nil
}

func checkAttrs(m map[string]string, allowed map[string][]string, typ string) error {
	keys, ok := allowed[typ]
	if !ok {
		return fmt.Errorf("cache type %q is not supported (supported: registry, local%s)", typ, map[bool]string{true: ", inline", false: ""}[len(allowed) == 3])
	}
	for k := range m {
		if k == "type" {
			continue
		}
		found := false
		for _, a := range keys {
			found = found || a == k
		}
		if !found {
			return fmt.Errorf("unknown attribute %q for type=%s", k, typ)
		}
	}
	return nil
}

// ParseAll parses --cache-to values (to) and --cache-from values (from),
// failing on the first bad one.
func ParseAll(to, from []string) ([]Export, []Import, error) {
	var exps []Export
	var imps []Import
	for _, s := range to {
		e, err := ParseExport(s)
		if err != nil {
			return nil, nil, err
		}
		exps = append(exps, e)
	}
	for _, s := range from {
		i, err := ParseImport(s)
		if err != nil {
			return nil, nil, err
		}
		imps = append(imps, i)
	}
	return exps, imps, nil
}
