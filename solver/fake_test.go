package solver

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/builderdev/builder/llb"
	digest "github.com/opencontainers/go-digest"
)

// res is a fake result: a file tree as a map.
type res struct {
	id    string
	files map[string]string
}

func (r *res) ID() string { return r.id }

// world is what outlives a build: stored results and the local contexts.
type world struct {
	mu     sync.Mutex
	n      int
	stored map[string]*res
	local  map[string]map[string]string
}

func newWorld() *world {
	return &world{stored: map[string]*res{}, local: map[string]map[string]string{}}
}

func (w *world) setFile(ctxName, path, content string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.local[ctxName] == nil {
		w.local[ctxName] = map[string]string{}
	}
	w.local[ctxName][path] = content
}

// fakeWorker runs llb ops on map trees. Exec ops add the file "/<name>";
// file ops copy files; local ops read the world's contexts.
type fakeWorker struct {
	w *world

	mu            sync.Mutex
	execs         map[string]int // by vertex name
	resultDigests int
	// hooks run inside Exec, by vertex name.
	hooks map[string]func(ctx context.Context) error
	// loadErr, when set, is returned by LoadResult.
	loadErr error

	active, peak atomic.Int64
}

func newWorker(w *world) *fakeWorker {
	return &fakeWorker{w: w, execs: map[string]int{}, hooks: map[string]func(context.Context) error{}}
}

func (f *fakeWorker) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.execs[name]
}

func (f *fakeWorker) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.execs {
		n += c
	}
	return n
}

func (f *fakeWorker) ResolveOp(v *llb.Vertex) (Op, error) {
	return &fakeOp{f: f, v: v}, nil
}

func (f *fakeWorker) LoadResult(ctx context.Context, id string) (Result, error) {
	if f.loadErr != nil {
		return nil, f.loadErr
	}
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	r, ok := f.w.stored[id]
	if !ok {
		return nil, fmt.Errorf("result %s: %w", id, ErrNotFound)
	}
	return r, nil
}

type fakeOp struct {
	f *fakeWorker
	v *llb.Vertex
}

func filesDigest(files map[string]string, paths []string) digest.Digest {
	var b strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&b, "%s=%q\n", p, files[p])
	}
	return digest.FromString(b.String())
}

func (o *fakeOp) CacheMap(ctx context.Context) (*CacheMap, error) {
	switch op := o.v.Op().(type) {
	case llb.LocalOp:
		return &CacheMap{Digest: o.v.Digest(), Volatile: true, ResultDigest: func(ctx context.Context, r Result) (digest.Digest, error) {
			o.f.mu.Lock()
			o.f.resultDigests++
			o.f.mu.Unlock()
			files := r.(*res).files
			var all []string
			for p := range files {
				all = append(all, p)
			}
			sort.Strings(all)
			return filesDigest(files, all), nil
		}}, nil
	case llb.FileOp:
		deps := make([]CacheDep, len(o.v.Inputs()))
		for _, a := range op.Actions {
			if c := a.Copy; c != nil {
				deps[c.Src].ContentFunc = func(ctx context.Context, r Result) (digest.Digest, error) {
					files := r.(*res).files
					for _, p := range c.SrcPaths {
						if _, ok := files[p]; !ok {
							return "", fmt.Errorf("%s: not found", p)
						}
					}
					return filesDigest(files, c.SrcPaths), nil
				}
			}
		}
		return &CacheMap{Digest: o.v.Digest(), Deps: deps}, nil
	default:
		return &CacheMap{Digest: o.v.Digest()}, nil
	}
}

func (o *fakeOp) Exec(ctx context.Context, inputs []Result) (Result, error) {
	f, name := o.f, o.v.Name()
	f.mu.Lock()
	f.execs[name]++
	hook := f.hooks[name]
	f.mu.Unlock()

	n := f.active.Add(1)
	defer f.active.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	if hook != nil {
		if err := hook(ctx); err != nil {
			return nil, err
		}
	}
	out := map[string]string{}
	switch op := o.v.Op().(type) {
	case llb.LocalOp:
		f.w.mu.Lock()
		for k, v := range f.w.local[op.Name] {
			out[k] = v
		}
		f.w.mu.Unlock()
		return &res{files: out}, nil // volatile: no ID
	case llb.FileOp:
		if op.Base >= 0 && inputs[op.Base] != nil {
			for k, v := range inputs[op.Base].(*res).files {
				out[k] = v
			}
		}
		for _, a := range op.Actions {
			for _, p := range a.Copy.SrcPaths {
				out[p] = inputs[a.Copy.Src].(*res).files[p]
			}
		}
	default:
		for _, in := range inputs {
			if in != nil {
				for k, v := range in.(*res).files {
					out[k] = v
				}
			}
		}
		out["/"+name] = "ran"
	}
	fmt.Fprintf(LogWriter(ctx, 1), "running %s\n", name)
	ReportStats(ctx, Stats{PidsPeak: 1})
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.w.n++
	r := &res{id: fmt.Sprintf("r%d", f.w.n), files: out}
	f.w.stored[r.id] = r
	return r, nil
}

// Graph helpers.

func run(name string, inputs ...*llb.Vertex) *llb.Vertex {
	mounts := []llb.Mount{{Input: 0, Dest: "/"}}
	for i := 1; i < len(inputs); i++ {
		mounts = append(mounts, llb.Mount{Input: i, Dest: fmt.Sprintf("/in%d", i)})
	}
	return llb.NewVertex(llb.ExecOp{Args: []string{"sh", "-c", name}, Cwd: "/", Mounts: mounts}, inputs, llb.Meta{Name: name})
}

func local(name string) *llb.Vertex {
	return llb.NewVertex(llb.LocalOp{Name: name}, nil, llb.Meta{Name: "load " + name})
}

func copyFrom(base, src *llb.Vertex, paths ...string) *llb.Vertex {
	op := llb.FileOp{Base: 0, Actions: []llb.FileAction{{Copy: &llb.Copy{Src: 1, SrcPaths: paths, Dest: "/"}}}}
	return llb.NewVertex(op, []*llb.Vertex{base, src}, llb.Meta{Name: "COPY " + strings.Join(paths, " ")})
}

func withIgnoreCache(v *llb.Vertex) *llb.Vertex {
	m := v.Meta()
	m.IgnoreCache = true
	return v.WithMeta(m)
}

// recorder is a Reporter that keeps everything.
type recorder struct {
	mu       sync.Mutex
	statuses []Status
	logs     []Log
}

func (r *recorder) Status(s Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses = append(r.statuses, s)
}

func (r *recorder) Log(l Log) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, l)
}

// byName returns the statuses of the vertex called name.
func (r *recorder) byName(name string) []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Status
	for _, s := range r.statuses {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func mustSolve(t *testing.T, s *Solver, v *llb.Vertex) *res {
	t.Helper()
	r, err := s.Solve(t.Context(), v)
	if err != nil {
		t.Fatal(err)
	}
	return r.(*res)
}
