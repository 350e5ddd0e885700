package dockerfile

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyDirection guards the design's import rule: the frontend
// imports llb, never the solver, executor, snapshot or registry, and of
// BuildKit only the Dockerfile parser packages.
func TestDependencyDirection(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	allowedBuildkit := []string{
		"github.com/moby/buildkit/frontend/dockerfile/parser",
		"github.com/moby/buildkit/frontend/dockerfile/instructions",
		"github.com/moby/buildkit/frontend/dockerfile/shell",
		"github.com/moby/buildkit/frontend/dockerfile/linter",
		// imported by the packages above
		"github.com/moby/buildkit/frontend/dockerfile/command",
		"github.com/moby/buildkit/util/stack",
		"github.com/moby/buildkit/util/suggest",
	}
	forbidden := []string{"solver", "executor", "snapshot", "registry", "cache", "exporter"}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/moby/buildkit/") {
			ok := false
			for _, a := range allowedBuildkit {
				if p == a || strings.HasPrefix(p, a+"/") {
					ok = true
				}
			}
			if !ok {
				t.Errorf("imports %s", p)
			}
		}
		for _, f := range forbidden {
			if strings.HasPrefix(p, "github.com/builderdev/builder/"+f) {
				t.Errorf("imports %s", p)
			}
		}
	}
}
