package llb

import (
	"strings"
	"testing"
)

func exec(args ...string) ExecOp {
	return ExecOp{Args: args, Cwd: "/", Mounts: []Mount{{Input: 0, Dest: "/"}}}
}

func TestDigestStable(t *testing.T) {
	t.Parallel()
	build := func(meta Meta) *Vertex {
		img := NewVertex(ImageOp{Ref: "localhost:5000/base:1@sha256:0123", Platform: Platform{OS: "linux", Architecture: "amd64"}}, nil, Meta{Name: "FROM"})
		ctx := NewVertex(LocalOp{Name: "context", ExcludePatterns: []string{"*.log"}}, nil, Meta{})
		cp := NewVertex(FileOp{Base: 0, Actions: []FileAction{{Copy: &Copy{Src: 1, SrcPaths: []string{"/a"}, Dest: "/a"}}}}, []*Vertex{img, ctx}, meta)
		return NewVertex(exec("/bin/sh", "-c", "make"), []*Vertex{cp}, meta)
	}
	a := build(Meta{Name: "one"})
	b := build(Meta{Name: "two", IgnoreCache: true, Location: Location{File: "Dockerfile", Line: 3}})
	if a.Digest() != b.Digest() {
		t.Errorf("metadata changed the digest: %s != %s", a.Digest(), b.Digest())
	}
	if a.Digest() != build(Meta{}).Digest() {
		t.Error("the same graph built twice has two digests")
	}
	const want = "sha256:"
	if got := string(a.Digest()); len(got) != len(want)+64 || got[:len(want)] != want {
		t.Errorf("digest %q is not a sha256 digest", got)
	}
}

func TestDigestSensitive(t *testing.T) {
	t.Parallel()
	base := NewVertex(ImageOp{Ref: "r@sha256:1", Platform: Platform{OS: "linux", Architecture: "amd64"}}, nil, Meta{})
	other := NewVertex(ImageOp{Ref: "r@sha256:2", Platform: Platform{OS: "linux", Architecture: "amd64"}}, nil, Meta{})
	arm := NewVertex(ImageOp{Ref: "r@sha256:1", Platform: Platform{OS: "linux", Architecture: "arm64"}}, nil, Meta{})
	run := exec("sh", "-c", "true")
	variants := map[string]*Vertex{
		"base":      NewVertex(run, []*Vertex{base}, Meta{}),
		"input":     NewVertex(run, []*Vertex{other}, Meta{}),
		"platform":  NewVertex(run, []*Vertex{arm}, Meta{}),
		"scratch":   NewVertex(run, []*Vertex{nil}, Meta{}),
		"args":      NewVertex(exec("sh", "-c", "false"), []*Vertex{base}, Meta{}),
		"env":       NewVertex(ExecOp{Args: run.Args, Env: []string{"A=1"}, Cwd: "/", Mounts: run.Mounts}, []*Vertex{base}, Meta{}),
		"cwd":       NewVertex(ExecOp{Args: run.Args, Cwd: "/src", Mounts: run.Mounts}, []*Vertex{base}, Meta{}),
		"user":      NewVertex(ExecOp{Args: run.Args, Cwd: "/", User: "app", Mounts: run.Mounts}, []*Vertex{base}, Meta{}),
		"network":   NewVertex(ExecOp{Args: run.Args, Cwd: "/", Network: NetNone, Mounts: run.Mounts}, []*Vertex{base}, Meta{}),
		"mkdir":     NewVertex(FileOp{Base: 0, Actions: []FileAction{{Mkdir: &Mkdir{Path: "/a", Mode: 0o755}}}}, []*Vertex{base}, Meta{}),
		"mkdirMode": NewVertex(FileOp{Base: 0, Actions: []FileAction{{Mkdir: &Mkdir{Path: "/a", Mode: 0o700}}}}, []*Vertex{base}, Meta{}),
		"local":     NewVertex(LocalOp{Name: "context"}, nil, Meta{}),
		"localIgn":  NewVertex(LocalOp{Name: "context", ExcludePatterns: []string{"x"}}, nil, Meta{}),
	}
	seen := map[string]string{}
	for name, v := range variants {
		d := string(v.Digest())
		if prev, ok := seen[d]; ok {
			t.Errorf("%s and %s have the same digest", name, prev)
		}
		seen[d] = name
	}
}

func TestWalkVisitsInputsFirstOnce(t *testing.T) {
	t.Parallel()
	base := NewVertex(ImageOp{Ref: "r@sha256:1"}, nil, Meta{Name: "base"})
	a := NewVertex(exec("a"), []*Vertex{base}, Meta{Name: "a"})
	b := NewVertex(exec("b"), []*Vertex{base}, Meta{Name: "b"})
	top := NewVertex(FileOp{Base: 0, Actions: []FileAction{{Copy: &Copy{Src: 1, SrcPaths: []string{"/"}, Dest: "/"}}}}, []*Vertex{a, b, nil}, Meta{Name: "top"})
	var order []string
	if err := Walk(top, func(v *Vertex) error { order = append(order, v.Name()); return nil }); err != nil {
		t.Fatal(err)
	}
	want := "base a b top"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("walk order %q, want %q", got, want)
	}
}
