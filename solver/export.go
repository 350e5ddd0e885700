package solver

import (
	"github.com/builderdev/builder/llb"
	digest "github.com/opencontainers/go-digest"
)

// KeyedVertex is a vertex of a solved graph with its cache key.
type KeyedVertex struct {
	Vertex *llb.Vertex
	Info   KeyInfo
}

// Keys lists the vertices of v's graph whose cache keys this solver
// computed (every vertex a Solve of v needed, cached or not), inputs
// first, each once, with their keys: what a cache export writes. Volatile
// vertices (local sources) and vertices that ignore the cache are left out:
// they are never loaded from a cache.
func (s *Solver) Keys(v *llb.Vertex) []KeyedVertex {
	var out []KeyedVertex
	seen := map[digest.Digest]bool{}
	llb.Walk(v, func(x *llb.Vertex) error {
		if seen[x.Digest()] || x.Meta().IgnoreCache {
			return nil
		}
		seen[x.Digest()] = true
		s.mu.Lock()
		st := s.states[x.Digest()]
		s.mu.Unlock()
		if st == nil {
			return nil
		}
		if p, ok := st.prep.peek(); !ok || p.cm.Volatile {
			return nil
		}
		if info, ok := st.keyf.peek(); ok {
			out = append(out, KeyedVertex{Vertex: x, Info: info})
		}
		return nil
	})
	return out
}

// KeyDigests returns the cache keys of kv.
func KeyDigests(kv []KeyedVertex) []digest.Digest {
	out := make([]digest.Digest, len(kv))
	for i, x := range kv {
		out[i] = x.Info.Key
	}
	return out
}
