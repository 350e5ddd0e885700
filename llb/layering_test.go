package llb

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/builderdev/builder/"

// forbidden lists, per package path prefix, the module packages it must not
// import: the arrows of docs/architecture.md point one way only.
var forbidden = map[string][]string{
	"llb":                  {"cmd", "frontend", "solver", "cache", "snapshot", "executor", "registry", "exporter", "state", "build", "run", "prune"},
	"frontend":             {"cmd", "solver", "cache", "snapshot", "executor", "registry", "exporter", "state", "build", "run", "prune"},
	"solver/ops":           {"cmd", "frontend", "exporter", "state", "build", "run", "prune"},
	"solver":               {"cmd", "frontend", "snapshot", "executor", "registry", "exporter", "state", "build", "run", "prune"},
	"internal/remotecache": {"cmd", "frontend", "executor", "exporter", "state", "build", "run", "prune"},
	"internal/logfilter":   {"cmd", "frontend", "snapshot", "executor", "registry", "exporter", "state", "build", "run", "prune"},
	// archive is the one tar extractor: filesystem code only.
	"internal/archive":    {"cmd", "frontend", "llb", "solver", "cache", "snapshot", "executor", "registry", "exporter", "state", "build", "run", "prune"},
	"internal/digestutil": {"cmd", "frontend", "llb", "solver", "cache", "snapshot", "executor", "registry", "exporter", "state", "build", "run", "prune", "internal"},
	"internal/pty":        {"cmd", "frontend", "llb", "solver", "cache", "snapshot", "executor", "registry", "exporter", "state", "build", "run", "prune"},
	"cache":               {"cmd", "frontend", "llb", "solver", "snapshot", "executor", "registry", "exporter", "state", "build", "run", "prune"},
	"snapshot":            {"cmd", "frontend", "llb", "solver", "cache", "executor", "registry", "exporter", "state", "build", "run", "prune"},
	"executor":            {"cmd", "frontend", "llb", "solver", "cache", "registry", "exporter", "state", "build", "run", "prune"},
	"registry":            {"cmd", "frontend", "solver", "snapshot", "executor", "exporter", "state", "build", "run", "prune"},
	"exporter":            {"cmd", "frontend", "solver", "executor", "state", "build", "run", "prune"},
	"frontend/dockerfile": {"cmd", "solver", "cache", "snapshot", "executor", "registry", "exporter", "state", "build", "run", "prune"},
	// state owns the root: it opens the stores below it and knows nothing
	// of builds, Dockerfiles or registries.
	"state":               {"cmd", "frontend", "llb", "solver", "registry", "build", "run", "prune"},
	"internal/containers": {"cmd", "frontend", "llb", "solver", "cache", "executor", "registry", "exporter", "state", "build", "run", "prune"},
	"internal/buildinfo":  {"cmd", "frontend", "llb", "solver", "cache", "snapshot", "executor", "registry", "exporter", "state", "build", "run", "prune", "internal"},
	"internal/interrupt":  {"cmd", "frontend", "llb", "solver", "cache", "snapshot", "executor", "registry", "exporter", "state", "build", "run", "prune", "internal"},
	// build is the library entry point: everything but the CLI is below it.
	"build": {"cmd", "run", "prune"},
	// run is the library form of builder run, beside build.
	"run": {"cmd"},
	// prune is the library form of prune, du, image prune and the GC
	// after a build.
	"prune": {"cmd", "build", "run", "frontend"},
}

// leaf is the package of filesystem helpers every layer may use: it
// imports nothing of the module itself.
const leaf = "internal/fsutil"

// buildkitAllowed are the only BuildKit packages the project may use.
var buildkitAllowed = []string{
	"github.com/moby/buildkit/frontend/dockerfile/parser",
	"github.com/moby/buildkit/frontend/dockerfile/instructions",
	"github.com/moby/buildkit/frontend/dockerfile/shell",
	"github.com/moby/buildkit/frontend/dockerfile/linter",
}

func TestLayering(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		name := d.Name()
		if p != root && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(p, build.ImportComment)
		if err != nil {
			return nil // no Go files
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		imports := append(append([]string(nil), pkg.Imports...), pkg.TestImports...)
		checked++
		for _, imp := range imports {
			if strings.HasPrefix(imp, "github.com/moby/buildkit/") {
				if !strings.HasPrefix(rel, "frontend/dockerfile") || !allowedBuildkit(imp) {
					t.Errorf("%s imports %s: only frontend/dockerfile may use BuildKit, and only its Dockerfile parser packages", rel, imp)
				}
			}
			if !strings.HasPrefix(imp, module) {
				continue
			}
			target := strings.TrimPrefix(imp, module)
			if rel == leaf || strings.HasPrefix(rel, leaf+"/") {
				t.Errorf("%s imports %s: %s must import nothing of the module", rel, target, leaf)
				continue
			}
			if target == leaf {
				continue
			}
			for _, bad := range forbiddenFor(rel) {
				if target == bad || strings.HasPrefix(target, bad+"/") {
					if isSelfOrChild(rel, target) {
						continue
					}
					t.Errorf("%s imports %s: the dependency points the wrong way", rel, target)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("checked only %d packages: is the module root %s?", checked, root)
	}
}

// forbiddenFor returns the rule of the longest prefix matching pkg.
func forbiddenFor(pkg string) []string {
	best := ""
	for prefix := range forbidden {
		if (pkg == prefix || strings.HasPrefix(pkg, prefix+"/")) && len(prefix) > len(best) {
			best = prefix
		}
	}
	return forbidden[best]
}

func isSelfOrChild(pkg, target string) bool {
	return target == pkg || strings.HasPrefix(target, pkg+"/")
}

func allowedBuildkit(imp string) bool {
	for _, a := range buildkitAllowed {
		if imp == a || strings.HasPrefix(imp, a+"/") {
			return true
		}
	}
	return false
}
