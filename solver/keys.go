package solver

import (
	"context"
	"errors"
	"fmt"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/llb"
	digest "github.com/opencontainers/go-digest"
)

// ErrNotFound is the sentinel a Worker wraps in LoadResult's error when a
// stored result is gone; the solver then treats the key as a miss and runs
// the op. It is cache.ErrNotFound, so a worker may wrap either.
var ErrNotFound = cache.ErrNotFound

// KeyInfo says what a cache key was computed from (op digest, each input's
// contribution, the vertex name). It is defined in package cache, which
// stores it.
type KeyInfo = cache.KeyInfo

// KeyInput is one input's contribution to a cache key.
type KeyInput = cache.KeyInput

// KeyRecorder is optionally implemented by a KeyStore (cache.Store does). The
// solver then saves keys with SaveKey instead of Save, so that a later miss
// can be explained.
type KeyRecorder interface {
	SaveKey(info KeyInfo, id string) error
}

// KeyLocker is implemented by a KeyStore shared by several processes: the
// solver holds a key's lock while it runs the step of a key that missed,
// and looks the key up again once it has the lock, so that a step another
// process is running at the same time runs once and this build uses its
// result, as an identical step does within one build.
type KeyLocker interface {
	// LockKey waits for the lock of key or ctx; unlock releases it.
	LockKey(ctx context.Context, key digest.Digest) (unlock func(), err error)
}

// MissExplainer explains a cache miss: given the components of the key that
// missed, it says which differ from the key the same step had last time, as
// one printable line ("cache miss: input 1 (COPY app.go) changed").
// cache.Store implements it.
type MissExplainer interface {
	ExplainMiss(KeyInfo) string
}

// VertexError is the error of a solve: the vertex where it happened and the
// cause. Errors of inputs are passed up unchanged, not wrapped again.
type VertexError struct {
	Vertex *llb.Vertex
	Err    error
}

func (e *VertexError) Error() string {
	return fmt.Sprintf("%s: %v", vertexName(e.Vertex), e.Err)
}

func (e *VertexError) Unwrap() error { return e.Err }

func vertexName(v *llb.Vertex) string {
	if n := v.StepName(); n != "" {
		return n
	}
	return fmt.Sprintf("%s %s", v.Op().Kind(), v.Digest())
}

// wrap attaches v to err unless err already names a vertex.
func wrap(v *llb.Vertex, err error) error {
	if err == nil {
		return nil
	}
	var ve *VertexError
	if errors.As(err, &ve) {
		return err
	}
	return &VertexError{Vertex: v, Err: err}
}
