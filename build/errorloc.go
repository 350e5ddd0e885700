package build

import (
	"errors"

	"github.com/builderdev/builder/frontend/dockerfile"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/solver/ops"
)

// ErrorLocation is where in the Dockerfile a failed build's err is: the
// failing step's instruction, or the line a Dockerfile error names (the
// zero Location when neither), and the last output lines of a failed step.
func ErrorLocation(err error) (llb.Location, []string) {
	var se *ops.StepError
	var fe *dockerfile.Error
	switch {
	case errors.As(err, &se):
		return se.Location, se.Tail
	case errors.As(err, &fe):
		return llb.Location{File: fe.File, Line: fe.Line, EndLine: fe.EndLine}, nil
	}
	return llb.Location{}, nil
}
