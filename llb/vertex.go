package llb

import (
	"encoding/json"
	"fmt"
	"sync"

	digest "github.com/opencontainers/go-digest"
)

// Location is a place in a source file, for messages.
type Location struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	// EndLine is the last line of a multi-line instruction (0 = Line).
	EndLine int `json:"endLine,omitempty"`
}

// Meta is what a vertex carries besides its op; none of it is part of the
// digest.
type Meta struct {
	// Name is the display name: "[stage 2/4] RUN make".
	Name string
	// Location is where the vertex comes from.
	Location Location
	// IgnoreCache makes the solver run the op even when a cached result
	// exists (--no-cache). The new result replaces the cached one.
	IgnoreCache bool
	// Description holds free-form metadata for progress and exporters
	// (e.g. "history": the created_by text).
	Description map[string]string
	// ProgressGroup, when set, shows the vertex as part of one step of the
	// progress display with the other vertices of the group.
	ProgressGroup *ProgressGroup
}

// ProgressGroup is a step of the progress display made of several vertices,
// as BuildKit's: COPY --link is a copy onto scratch and a merge, shown as
// the one instruction. The step has the group's Name; it is cached when all
// of its vertices are, and shown once a vertex that is not Weak starts (a
// weak vertex alone, e.g. a copy whose merge is not needed, stays hidden).
type ProgressGroup struct {
	// ID tells groups apart within a build.
	ID   string
	Name string
	Weak bool
}

// Vertex is an op and its inputs. Vertices are immutable once made.
type Vertex struct {
	op     Op
	inputs []*Vertex
	meta   Meta

	once   sync.Once
	digest digest.Digest
}

// NewVertex returns a vertex for op with the given inputs. A nil input is the
// empty tree. The op must be one of ImageOp, LocalOp, ExecOp or FileOp (by
// value).
func NewVertex(op Op, inputs []*Vertex, meta Meta) *Vertex {
	in := make([]*Vertex, len(inputs))
	copy(in, inputs)
	return &Vertex{op: op, inputs: in, meta: meta}
}

// Op returns the vertex's op.
func (v *Vertex) Op() Op { return v.op }

// Inputs returns the input vertices; an entry may be nil (scratch).
func (v *Vertex) Inputs() []*Vertex { return v.inputs }

// Meta returns the vertex's metadata.
func (v *Vertex) Meta() Meta { return v.meta }

// Name is Meta().Name.
func (v *Vertex) Name() string { return v.meta.Name }

// StepName is the name of the step the user sees v as: its progress
// group's name, else its Name.
func (v *Vertex) StepName() string {
	if g := v.meta.ProgressGroup; g != nil && g.Name != "" {
		return g.Name
	}
	return v.meta.Name
}

// WithMeta returns a copy of v with other metadata and the same digest.
func (v *Vertex) WithMeta(m Meta) *Vertex {
	return &Vertex{op: v.op, inputs: v.inputs, meta: m}
}

// scratchDigest stands in for a nil input in a parent's encoding.
const scratchDigest = digest.Digest("scratch")

// encoded is the canonical form that is hashed. Field order is fixed by the
// struct; maps are never used, so encoding/json output is canonical.
type encoded struct {
	Version int             `json:"v"`
	Kind    Kind            `json:"kind"`
	Op      Op              `json:"op"`
	Inputs  []digest.Digest `json:"inputs"`
}

// encodingVersion changes whenever the encoding of any op changes, so old
// cache keys never match new semantics.
const encodingVersion = 1

// Digest returns the vertex's stable digest.
func (v *Vertex) Digest() digest.Digest {
	v.once.Do(func() { v.digest = v.encode(nil) })
	return v.digest
}

// contentDigest stands in for an input masked by DigestMasking.
const contentDigest = digest.Digest("content")

// DigestMasking is the digest of v with the inputs i for which masked(i)
// is true left out (a placeholder in their place): the op's own part of a
// cache key when those inputs count by their content instead.
func (v *Vertex) DigestMasking(masked func(i int) bool) digest.Digest {
	return v.encode(masked)
}

func (v *Vertex) encode(masked func(i int) bool) digest.Digest {
	e := encoded{Version: encodingVersion, Kind: v.op.Kind(), Op: v.op, Inputs: make([]digest.Digest, len(v.inputs))}
	for i, in := range v.inputs {
		switch {
		case masked != nil && masked(i):
			e.Inputs[i] = contentDigest
		case in == nil:
			e.Inputs[i] = scratchDigest
		default:
			e.Inputs[i] = in.Digest()
		}
	}
	b, err := json.Marshal(e)
	if err != nil {
		panic(fmt.Sprintf("llb: encoding %T: %v", v.op, err))
	}
	return digest.FromBytes(b)
}

// Walk calls fn for v and every vertex it depends on, each once, inputs
// before the vertices that use them.
func Walk(v *Vertex, fn func(*Vertex) error) error {
	seen := map[digest.Digest]bool{}
	var visit func(*Vertex) error
	visit = func(x *Vertex) error {
		if x == nil || seen[x.Digest()] {
			return nil
		}
		seen[x.Digest()] = true
		for _, in := range x.inputs {
			if err := visit(in); err != nil {
				return err
			}
		}
		return fn(x)
	}
	return visit(v)
}
