package dockerfile

import (
	"strconv"
	"strings"

	"github.com/builderdev/builder/llb"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// linkCopy merges copied, a COPY/ADD --link made on scratch, onto the
// stage's root, as BuildKit's dispatchCopy does with a MergeOp: the copy's
// layer is exactly the layer of the copy onto an empty tree (parent
// directories of the destination made 0755 root:root) and keeps its cache
// key when the root changes; only the merge runs again. The merge vertex
// is named like BuildKit's: the step's prefix, then "LINK " and the
// instruction; as in BuildKit, both vertices are in one progress group
// named after the instruction, so that the progress shows one step (the
// copy is weak: alone, as when the merge is cached, it shows nothing). The
// group's ID is the merge's digest: deterministic, and one per merge.
func (c *converter) linkCopy(root, copied *llb.Vertex, display, cmdText string, loc []parser.Range) *llb.Vertex {
	name := "LINK " + cmdText
	if strings.HasSuffix(display, cmdText) {
		name = strings.TrimSuffix(display, cmdText) + name
	}
	meta := c.meta(name, loc, "")
	id := llb.NewVertex(llb.MergeOp{}, []*llb.Vertex{root, copied}, meta).Digest().String()
	cm := copied.Meta()
	cm.ProgressGroup = &llb.ProgressGroup{ID: id, Name: display, Weak: true}
	meta.ProgressGroup = &llb.ProgressGroup{ID: id, Name: display}
	return llb.NewVertex(llb.MergeOp{}, []*llb.Vertex{root, copied.WithMeta(cm)}, meta)
}

// chownByName reports whether a --chown value names a user or group
// instead of numeric ids ("root" counts as uid 0), as BuildKit's check for
// --link: names are resolved in the destination's /etc/passwd and
// /etc/group, and a --link copy's destination is empty.
func chownByName(chown string) bool {
	if chown == "" {
		return false
	}
	u, g, _ := strings.Cut(chown, ":")
	isName := func(s string) bool {
		if s == "" || s == "root" {
			return false
		}
		_, err := strconv.ParseInt(s, 10, 32)
		return err != nil
	}
	return isName(u) || isName(g)
}
