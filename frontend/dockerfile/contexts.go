package dockerfile

import (
	"strings"

	"github.com/builderdev/builder/llb"
)

// LayoutRefPrefix marks an image reference served from an OCI layout
// directory (--build-context name=oci-layout://PATH[:TAG]); the resolver and
// the image source of the build understand it, the frontend passes it on.
const LayoutRefPrefix = "oci-layout://"

// NamedContext is a --build-context: it replaces the image or the stage
// (a stage named like it is not used at all, as in BuildKit) that FROM name,
// COPY --from=name and RUN --mount=from=name refer to. Exactly one field is
// set.
type NamedContext struct {
	// Local is the name of a local source (llb.LocalOp.Name) holding a
	// directory from the client.
	Local string
	// ExcludePatterns are the local directory's .dockerignore patterns.
	ExcludePatterns []string
	// Image is an image reference to use instead ("docker-image://REF"
	// without its scheme, or an oci-layout:// reference).
	Image string
	// HTTP is an http(s):// URL: the stage's filesystem holds the
	// downloaded file as /context, as in BuildKit.
	HTTP string
}

// namedContext looks up the build context that replaces name.
func (c *converter) namedContext(name string) (NamedContext, bool) {
	if len(c.opt.NamedContexts) == 0 {
		return NamedContext{}, false
	}
	nc, ok := c.opt.NamedContexts[name]
	if !ok {
		nc, ok = c.opt.NamedContexts[strings.ToLower(name)]
	}
	return nc, ok
}

// namedLocalState turns a local named context into a tree: a file op that
// copies the whole directory (its .dockerignore applied), so that it can be
// the root filesystem of a stage, a COPY --from source or a bind mount.
func (c *converter) namedLocalState(name string, nc NamedContext) *llb.Vertex {
	local := llb.NewVertex(llb.LocalOp{Name: nc.Local, ExcludePatterns: cloneSlice(nc.ExcludePatterns)}, nil,
		llb.Meta{Name: "[internal] load build context " + name, IgnoreCache: c.opt.NoCache})
	cp := &llb.Copy{Src: 0, SrcPaths: []string{"/"}, Dest: "/", DirContentsOnly: true, CreateDestPath: true}
	return llb.NewVertex(llb.FileOp{Base: -1, Actions: []llb.FileAction{{Copy: cp}}}, []*llb.Vertex{local},
		llb.Meta{Name: "[context " + name + "] load from client", IgnoreCache: c.opt.NoCache,
			Description: map[string]string{createdByKey: "COPY / / # context " + name}})
}
