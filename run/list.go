package run

import (
	"github.com/builderdev/builder/internal/containers"
	"github.com/builderdev/builder/state"
)

// Listed is a container of the root and whether the builder process that
// runs it is alive (a record left Running by a dead process is not).
type Listed = containers.Listed

// List lists the containers of the root dir, as docker ps -a does.
func List(dir string) ([]Listed, error) {
	r, err := state.Open(dir, state.Options{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cs, err := r.Containers()
	if err != nil {
		return nil, err
	}
	return cs.ListRunning()
}
