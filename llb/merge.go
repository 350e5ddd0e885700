package llb

// KindMerge is the kind of MergeOp.
const KindMerge Kind = "merge"

// MergeOp stacks its inputs' trees: the output is input 0's tree with the
// layers of input 1, 2, ... applied on top in order, as BuildKit's MergeOp
// (Dockerfile COPY --link and ADD --link copy onto scratch and merge the
// copy with the stage's root). A nil input is the empty tree and adds
// nothing.
//
// An image built on a merge keeps every input's layers as they are: input
// 0's layers, then input 1's, and so on, so a layer made on scratch is
// reused whatever it is merged onto. The digest of a MergeOp depends only on
// its inputs, so a vertex on scratch that is merged keeps its own cache key
// when the other inputs change.
type MergeOp struct{}

// Kind implements Op.
func (MergeOp) Kind() Kind { return KindMerge }
