package ops

import (
	"fmt"

	"github.com/builderdev/builder/llb"
)

// StepError is a failed step with where it comes from and, for an exec, the
// last lines of its output.
type StepError struct {
	Location llb.Location
	Err      error
	// Tail holds the last lines the process printed (execs only).
	Tail []string
	// located is set when Err already names the location.
	located bool
}

func (e *StepError) Error() string {
	if e.Location.File == "" || e.Location.Line == 0 || e.located {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s:%d: %v", e.Location.File, e.Location.Line, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// withLocation wraps err as a StepError of vertex v.
func withLocation(v *llb.Vertex, err error) error {
	return &StepError{Location: v.Meta().Location, Err: err}
}
