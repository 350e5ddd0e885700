package ops

import (
	"fmt"

	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/llb"
)

// CheckPlatforms returns an error before anything is built when a RUN of
// the graphs under roots is for an architecture this machine neither runs
// natively nor emulates (executor.CheckEmulation: a binfmt_misc handler
// with QEMU); the error names the first such RUN and what to install.
func CheckPlatforms(roots ...*llb.Vertex) error {
	seen := map[*llb.Vertex]bool{}
	checked := map[string]error{}
	var walk func(v *llb.Vertex) error
	walk = func(v *llb.Vertex) error {
		if v == nil || seen[v] {
			return nil
		}
		seen[v] = true
		for _, in := range v.Inputs() {
			if err := walk(in); err != nil {
				return err
			}
		}
		ex, ok := v.Op().(llb.ExecOp)
		if !ok || ex.Platform.Architecture == "" {
			return nil
		}
		arch := ex.Platform.Architecture
		err, done := checked[arch]
		if !done {
			err = executor.CheckEmulation(arch)
			checked[arch] = err
		}
		if err != nil {
			return &StepError{Location: v.Meta().Location, Err: fmt.Errorf("RUN for platform %s: %w", ex.Platform, err)}
		}
		return nil
	}
	for _, r := range roots {
		if err := walk(r); err != nil {
			return err
		}
	}
	return nil
}
