package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/executor"
)

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

// Output is one --output destination.
type Output = build.OutputSpec
