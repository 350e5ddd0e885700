package cache

import (
	"fmt"

	digest "github.com/opencontainers/go-digest"
)

// KeyInfo says what a cache key was computed from, so that a later miss can
// be explained. The solver records it with every key it saves and passes it
// (for the key that missed) to ExplainMiss.
type KeyInfo struct {
	// Key is the cache key: sha256(Op, Inputs[0].Digest, ...).
	Key digest.Digest `json:"key"`
	// Name is the display name of the vertex ("[2/4] RUN make").
	Name string `json:"name,omitempty"`
	// Op is the op's own contribution to the key (its CacheMap digest).
	Op digest.Digest `json:"op"`
	// Inputs has one entry per vertex input, in order.
	Inputs []KeyInput `json:"inputs,omitempty"`
}

// KeyInput is one input's contribution to a cache key.
type KeyInput struct {
	// Name is the display name of the input vertex ("" for scratch).
	Name string `json:"name,omitempty"`
	// Digest is the input's cache key, or its content checksum when Content
	// is set.
	Digest digest.Digest `json:"digest"`
	// Content is set when Digest is a checksum of the input's files (a COPY
	// source) rather than the input's cache key.
	Content bool `json:"content,omitempty"`
}

// explain compares the key that missed (m) with a stored key of the same
// step (old) and says what differs.
func explainDiff(m, old KeyInfo, sameOp bool) string {
	if len(m.Inputs) != len(old.Inputs) {
		return fmt.Sprintf("cache miss: the number of inputs changed (%d, was %d)", len(m.Inputs), len(old.Inputs))
	}
	for i, in := range m.Inputs {
		o := old.Inputs[i]
		if in.Digest == o.Digest && in.Content == o.Content {
			continue
		}
		name := in.Name
		if name == "" {
			name = o.Name
		}
		what := "input"
		if in.Content {
			what = "content of input"
		}
		if name == "" {
			return fmt.Sprintf("cache miss: %s %d changed", what, i)
		}
		return fmt.Sprintf("cache miss: %s %d (%s) changed", what, i, name)
	}
	if !sameOp {
		return "cache miss: the step itself changed (command, arguments or options); its inputs are the same"
	}
	return "cache miss: no result is stored for this key any more"
}

// differing counts the inputs of a and b that differ (all when their counts
// differ).
func differing(a, b KeyInfo) int {
	if len(a.Inputs) != len(b.Inputs) {
		return max(len(a.Inputs), len(b.Inputs)) + 1
	}
	n := 0
	for i := range a.Inputs {
		if a.Inputs[i].Digest != b.Inputs[i].Digest || a.Inputs[i].Content != b.Inputs[i].Content {
			n++
		}
	}
	return n
}
