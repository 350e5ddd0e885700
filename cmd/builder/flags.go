package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/builderdev/builder/executor"
)

// Output is one --output destination.
type Output struct {
	Type  string
	Dest  string
	Attrs map[string]string
	// Annotations are the --annotation values for the image manifest.
	Annotations map[string]string
}

// parseOutput parses a buildx --output value: "type=oci,dest=out.tar", or
// a bare path, which means type=local,dest=PATH as in buildx ("-" means
// type=tar,dest=-: dest=- streams the archive to stdout).
func parseOutput(s string) (Output, error) {
	if !strings.Contains(s, "=") {
		if s == "-" { // buildx: -o - is a tar of the files on stdout
			return Output{Type: "tar", Dest: "-", Attrs: map[string]string{}}, nil
		}
		return Output{Type: "local", Dest: s, Attrs: map[string]string{}}, nil
	}
	o := Output{Attrs: map[string]string{}}
	for _, f := range splitCSV(s) {
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
	if err := validateOutput(&o); err != nil {
		return o, fmt.Errorf("--output %q: %w", s, err)
	}
	return o, nil
}

// splitCSV splits on commas outside double quotes and removes the quotes.
func splitCSV(s string) []string {
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

// parseBuildArgs turns K=V flags into a map; a bare K takes its value from
// the environment, as docker build does (and is skipped when unset).
func parseBuildArgs(args []string) (map[string]string, error) {
	m := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return nil, fmt.Errorf("--build-arg %q: missing name", a)
		}
		if !ok {
			ev, set := os.LookupEnv(k)
			if !set {
				continue
			}
			v = ev
		}
		m[k] = v
	}
	return m, nil
}

// defaultRoot is where state lives when --root and BUILDER_ROOT are unset.
func defaultRoot() string {
	if v := os.Getenv("BUILDER_ROOT"); v != "" {
		return v
	}
	// A rootless builder is root of its user namespace: its state
	// belongs in the user's directories all the same.
	if os.Geteuid() == 0 && !executor.Rootless() {
		return "/var/lib/builder"
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "builder")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), fmt.Sprintf("builder-%d", os.Getuid()))
	}
	return filepath.Join(home, ".local", "share", "builder")
}
