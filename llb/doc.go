// Package llb is the low-level build graph: an immutable DAG of ops that the
// solver executes.
//
// A Vertex holds one Op (an image source, a local context source, an exec or
// a file op) and the vertices whose outputs it consumes. Every vertex has a
// stable digest: the sha256 of a canonical JSON encoding of its op kind, its
// op's fields and the digests of its inputs. Metadata that does not change the
// result (display names, source locations, the no-cache flag) is kept in Meta
// and stays out of the digest, so the same Dockerfile and build args give the
// same digests on any machine.
//
// Each vertex has exactly one output, a filesystem tree. A nil *Vertex stands
// for the empty tree ("scratch").
//
// llb knows nothing about Dockerfiles, mounts or processes: the frontend builds
// graphs, the solver runs them.
package llb
