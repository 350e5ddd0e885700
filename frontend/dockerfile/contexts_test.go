package dockerfile

import (
	"strings"
	"testing"

	"github.com/builderdev/builder/llb"
)

// findLocals lists the local sources reachable from v.
func findLocals(v *llb.Vertex) []llb.LocalOp {
	seen := map[*llb.Vertex]bool{}
	var out []llb.LocalOp
	var walk func(*llb.Vertex)
	walk = func(v *llb.Vertex) {
		if v == nil || seen[v] {
			return
		}
		seen[v] = true
		if l, ok := v.Op().(llb.LocalOp); ok {
			out = append(out, l)
		}
		for _, in := range v.Inputs() {
			walk(in)
		}
	}
	walk(v)
	return out
}

func findImages(v *llb.Vertex) []string {
	seen := map[*llb.Vertex]bool{}
	var out []string
	var walk func(*llb.Vertex)
	walk = func(v *llb.Vertex) {
		if v == nil || seen[v] {
			return
		}
		seen[v] = true
		if l, ok := v.Op().(llb.ImageOp); ok {
			out = append(out, l.Ref)
		}
		for _, in := range v.Inputs() {
			walk(in)
		}
	}
	walk(v)
	return out
}

func TestNamedContexts(t *testing.T) {
	t.Parallel()
	local := map[string]NamedContext{"src": {Local: "ctx-src", ExcludePatterns: []string{"*.log"}}}
	image := map[string]NamedContext{"busybox": {Image: "alpine:3"}, "tools": {Image: "alpine:3"}}
	cases := []struct {
		name       string
		df         string
		contexts   map[string]NamedContext
		wantLocals []string
		wantImages []string
		wantEnv    string
	}{
		{name: "FROM local", df: "FROM src\nRUN ls\n", contexts: local, wantLocals: []string{"ctx-src"}},
		{name: "COPY --from local", df: "FROM busybox\nCOPY --from=src / /x\n", contexts: local, wantLocals: []string{"ctx-src"}, wantImages: []string{"docker.io/library/busybox:latest"}},
		{name: "RUN --mount from local", df: "FROM busybox\nRUN --mount=from=src,target=/s ls /s\n", contexts: local, wantLocals: []string{"ctx-src"}, wantImages: []string{"docker.io/library/busybox:latest"}},
		{name: "FROM image replaced", df: "FROM busybox\nRUN ls\n", contexts: image, wantImages: []string{"docker.io/library/alpine:3"}, wantEnv: "LANG=C.UTF-8"},
		{name: "COPY --from image replaced", df: "FROM scratch\nCOPY --from=tools /bin/sh /sh\n", contexts: image, wantImages: []string{"docker.io/library/alpine:3"}},
		// As in BuildKit, a context named like a stage replaces the stage:
		// its FROM is never resolved and its RUN never runs.
		{name: "context replaces a stage", df: "FROM busybox AS src\nRUN ls\nFROM scratch\nCOPY --from=src /x /x\n", contexts: local, wantLocals: []string{"ctx-src"}},
		{name: "image context replaces a stage", df: "FROM busybox AS tools\nRUN false\nFROM tools\nRUN ls\n", contexts: map[string]NamedContext{"tools": {Image: "alpine:3"}}, wantImages: []string{"docker.io/library/alpine:3"}, wantEnv: "LANG=C.UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			res := mustConvert(t, c.df, func(o *Options) { o.NamedContexts = c.contexts })
			var locals []string
			for _, l := range findLocals(res.State) {
				locals = append(locals, l.Name)
				if l.Name == "ctx-src" && strings.Join(l.ExcludePatterns, ",") != "*.log" {
					t.Errorf("local context excludes %v, want *.log", l.ExcludePatterns)
				}
			}
			if strings.Join(locals, ",") != strings.Join(c.wantLocals, ",") {
				t.Errorf("locals %v, want %v", locals, c.wantLocals)
			}
			var images []string
			for _, r := range findImages(res.State) {
				images = append(images, r[:strings.Index(r, "@")])
			}
			if strings.Join(images, ",") != strings.Join(c.wantImages, ",") {
				t.Errorf("images %v, want %v", images, c.wantImages)
			}
			if c.wantEnv != "" && !strings.Contains(strings.Join(res.Config.Config.Env, " "), c.wantEnv) {
				t.Errorf("env %v, want %s from the replacing image", res.Config.Config.Env, c.wantEnv)
			}
		})
	}
}

func TestNamedLocalContextHistory(t *testing.T) {
	t.Parallel()
	res := mustConvert(t, "FROM src\nRUN ls\n", func(o *Options) {
		o.NamedContexts = map[string]NamedContext{"src": {Local: "ctx-src"}}
	})
	var created []string
	for _, h := range res.Config.History {
		if !h.EmptyLayer {
			created = append(created, h.CreatedBy)
		}
	}
	if len(created) != 2 || created[0] != "COPY / / # context src" {
		t.Errorf("history %q: want the context copy then the RUN", created)
	}
}

func TestNamedContextReplacesStageInstructions(t *testing.T) {
	t.Parallel()
	res := mustConvert(t, "FROM busybox AS tools\nRUN false\nFROM tools\nRUN ls\n", func(o *Options) {
		o.NamedContexts = map[string]NamedContext{"tools": {Image: "alpine:3"}}
	})
	var runs []string
	llb.Walk(res.State, func(v *llb.Vertex) error {
		if e, ok := v.Op().(llb.ExecOp); ok {
			runs = append(runs, strings.Join(e.Args, " "))
		}
		return nil
	})
	if len(runs) != 1 || !strings.HasSuffix(runs[0], "ls") {
		t.Errorf("execs %q: the replaced stage's RUN must not be in the graph", runs)
	}
}

// A COPY --from a --build-context names it as one in errors, not as an
// image (nor as the stage it replaces).
func TestCopyFromNamedContextSourceName(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, df, want string }{
		{"local", "FROM scratch\nCOPY --from=ctx missing.txt /\n", `build context "ctx"`},
		{"image", "FROM scratch\nCOPY --from=tools /bin/sh /sh\n", `build context "tools"`},
		{"replaces a stage", "FROM busybox AS ctx\nRUN ls\nFROM scratch\nCOPY --from=ctx /x /x\n", `build context "ctx"`},
		{"stage on a context", "FROM ctx AS build\nFROM scratch\nCOPY --from=build /x /x\n", `stage "build"`},
		{"registry image", "FROM scratch\nCOPY --from=alpine:3 /x /x\n", "image alpine:3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			res := mustConvert(t, c.df, func(o *Options) {
				o.NamedContexts = map[string]NamedContext{"ctx": {Local: "ctx-src"}, "tools": {Image: "alpine:3"}}
			})
			// The last step is the COPY.
			var names []string
			if f, ok := res.State.Op().(llb.FileOp); ok {
				for _, a := range f.Actions {
					if a.Copy != nil {
						names = append(names, a.Copy.SrcName)
					}
				}
			}
			if len(names) != 1 || names[0] != c.want {
				t.Errorf("copy source names %q, want [%q]", names, c.want)
			}
		})
	}
}
