package solver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/llb"
	digest "github.com/opencontainers/go-digest"
)

// app is a small Dockerfile-like graph:
//
//	base -> COPY app.go (from context) -> RUN build --+
//	base -> COPY lint.cfg (from context) -> RUN lint -+-> RUN final
func app() (final *llb.Vertex) {
	base := run("base")
	ctx := local("context")
	build := run("build", copyFrom(base, ctx, "app.go"))
	lint := run("lint", copyFrom(base, ctx, "lint.cfg"))
	return run("final", build, lint)
}

func appWorld() *world {
	w := newWorld()
	w.setFile("context", "app.go", "package main")
	w.setFile("context", "lint.cfg", "strict")
	w.setFile("context", "README", "hello")
	return w
}

func TestCacheKeys(t *testing.T) {
	t.Parallel()
	keyOf := func(w *world, v *llb.Vertex) digest.Digest {
		t.Helper()
		k, err := New(newWorker(w), nil, Options{}).CacheKey(t.Context(), v)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ref := keyOf(appWorld(), app())
	tests := []struct {
		name   string
		change func(w *world) *llb.Vertex
		same   bool
	}{
		{"rebuilt graph, same files", func(w *world) *llb.Vertex { return app() }, true},
		{"unrelated context file", func(w *world) *llb.Vertex { w.setFile("context", "README", "changed"); return app() }, true},
		{"display name", func(w *world) *llb.Vertex { v := app(); m := v.Meta(); m.Name = "other"; return v.WithMeta(m) }, true},
		{"copied file content", func(w *world) *llb.Vertex { w.setFile("context", "app.go", "package other"); return app() }, false},
		{"other copied file", func(w *world) *llb.Vertex { w.setFile("context", "lint.cfg", "lax"); return app() }, false},
		{"command", func(w *world) *llb.Vertex {
			base := run("base2")
			ctx := local("context")
			return run("final", run("build", copyFrom(base, ctx, "app.go")), run("lint", copyFrom(base, ctx, "lint.cfg")))
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := appWorld()
			v := tc.change(w)
			if got := keyOf(w, v); (got == ref) != tc.same {
				t.Errorf("key %s, reference %s: same = %v, want %v", got, ref, got == ref, tc.same)
			}
		})
	}
	// The key follows the documented formula.
	w := appWorld()
	base := run("base")
	s := New(newWorker(w), nil, Options{})
	k, _ := s.CacheKey(t.Context(), base)
	if want := keyDigest(base.Digest(), nil); k != want {
		t.Fatalf("key of a leaf = %s, want sha256(digest) %s", k, want)
	}
	top := run("top", base)
	k2, _ := s.CacheKey(t.Context(), top)
	if want := keyDigest(top.Digest(), []KeyInput{{Digest: k}}); k2 != want {
		t.Fatalf("key = %s, want %s", k2, want)
	}
}

func openCache(t *testing.T, dir string) *cache.Store {
	t.Helper()
	s, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPersistedCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := appWorld()
	fw := newWorker(w)
	first := mustSolve(t, New(fw, openCache(t, dir), Options{}), app())
	for _, n := range []string{"base", "build", "lint", "final", "COPY app.go", "load context"} {
		if fw.count(n) != 1 {
			t.Fatalf("first build: %s ran %d times", n, fw.count(n))
		}
	}

	// A new process: new store handle, new solver, new worker.
	fw2 := newWorker(w)
	rep := &recorder{}
	second := mustSolve(t, New(fw2, openCache(t, dir), Options{Reporter: rep}), app())
	if second.id != first.id {
		t.Fatalf("second build result %s, want cached %s", second.id, first.id)
	}
	// Only the context is read again (its content is part of the COPY keys).
	if fw2.total() != 1 || fw2.count("load context") != 1 {
		t.Fatalf("second build executed %v", fw2.execs)
	}
	for _, n := range []string{"base", "build", "lint", "final", "COPY app.go", "COPY lint.cfg"} {
		st := rep.byName(n)
		if len(st) != 1 || !st[0].Cached || st[0].Completed.IsZero() {
			t.Errorf("%s: statuses %+v, want one cached", n, st)
		}
	}
}

func TestContentChangeRerunsDependentChain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := appWorld()
	mustSolve(t, New(newWorker(w), openCache(t, dir), Options{}), app())

	w.setFile("context", "app.go", "package main // v2")
	fw := newWorker(w)
	rep := &recorder{}
	out := mustSolve(t, New(fw, openCache(t, dir), Options{Reporter: rep}), app())
	if out.files["app.go"] != "package main // v2" {
		t.Fatalf("result has app.go %q", out.files["app.go"])
	}
	want := map[string]int{"load context": 1, "COPY app.go": 1, "build": 1, "final": 1}
	if fmt.Sprint(fw.execs) != fmt.Sprint(want) {
		t.Fatalf("executed %v, want %v", fw.execs, want)
	}
	// base is loaded from the cache (COPY app.go runs on it), not executed.
	misses := map[string]string{
		"COPY app.go": "cache miss: content of input 1 (load context) changed",
		"build":       "cache miss: input 0 (COPY app.go) changed",
		"final":       "cache miss: input 0 (build) changed",
	}
	for name, text := range misses {
		st := rep.byName(name)
		if len(st) != 2 || st[0].CacheMiss != text || st[1].CacheMiss != text {
			t.Errorf("%s: statuses %+v, want miss %q", name, st, text)
		}
	}
	if st := rep.byName("lint"); len(st) != 1 || !st[0].Cached {
		t.Errorf("lint: %+v, want cached", st)
	}
}

func TestLaziness(t *testing.T) {
	t.Parallel()
	w := newWorld()
	store := openCache(t, t.TempDir())
	image := run("pull image")
	final := run("final", run("step", image))
	mustSolve(t, New(newWorker(w), store, Options{}), final)

	fw := newWorker(w)
	rep := &recorder{}
	mustSolve(t, New(fw, store, Options{Reporter: rep}), final)
	if fw.total() != 0 {
		t.Fatalf("cached final vertex still executed %v", fw.execs)
	}
	for _, n := range []string{"pull image", "step", "final"} {
		if st := rep.byName(n); len(st) != 1 || !st[0].Cached {
			t.Errorf("%s: %+v, want reported once as cached", n, st)
		}
	}
	// A result that is gone is a miss: final runs again, on loaded inputs.
	w.mu.Lock()
	for id, r := range w.stored {
		if r.files["/final"] != "" && len(r.files) == 3 {
			delete(w.stored, id)
		}
	}
	w.mu.Unlock()
	fw2 := newWorker(w)
	rep2 := &recorder{}
	mustSolve(t, New(fw2, store, Options{Reporter: rep2}), final)
	if fmt.Sprint(fw2.execs) != "map[final:1]" {
		t.Fatalf("after losing the final result, executed %v", fw2.execs)
	}
	if st := rep2.byName("final"); len(st) != 2 || st[0].CacheMiss != "cache miss: the cached result is gone" {
		t.Fatalf("final: %+v", st)
	}
	// Any other load error fails the build.
	fw3 := newWorker(w)
	fw3.loadErr = errors.New("disk on fire")
	if _, err := New(fw3, store, Options{}).Solve(t.Context(), final); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("load error: %v", err)
	}
}

func TestDedupe(t *testing.T) {
	t.Parallel()
	w := newWorld()
	fw := newWorker(w)
	s := New(fw, nil, Options{})
	a := run("a")
	diamond := run("d", run("b", a), run("c", a))
	mustSolve(t, s, diamond)
	// The same graph built again, also through an equal but distinct vertex.
	mustSolve(t, s, run("d", run("b", run("a")), run("c", run("a"))))
	want := map[string]int{"a": 1, "b": 1, "c": 1, "d": 1}
	if fmt.Sprint(fw.execs) != fmt.Sprint(want) {
		t.Fatalf("executed %v, want %v", fw.execs, want)
	}

	// Two concurrent Solve calls of one vertex: one Exec, both get it.
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	fw.hooks["slow"] = func(ctx context.Context) error {
		started <- struct{}{}
		<-release
		return nil
	}
	var wg sync.WaitGroup
	results := make([]Result, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Solve(t.Context(), run("slow"))
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		}()
	}
	<-started
	time.Sleep(20 * time.Millisecond) // let the others join (they must not start a second Exec)
	close(release)
	wg.Wait()
	if fw.count("slow") != 1 {
		t.Fatalf("concurrent solves executed %d times", fw.count("slow"))
	}
	for _, r := range results {
		if r != results[0] {
			t.Fatalf("results differ: %v", results)
		}
	}
}

// barrier returns a hook that blocks until n execs are inside it at once.
func barrier(n int) func(ctx context.Context) error {
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	return func(ctx context.Context) error {
		mu.Lock()
		arrived++
		if arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			return nil
		case <-time.After(10 * time.Second):
			return fmt.Errorf("only %d of %d ops ran at once", arrived, n)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func TestConcurrentExecution(t *testing.T) {
	t.Parallel()
	const n = 4
	fw := newWorker(newWorld())
	b := barrier(n)
	var leaves []*llb.Vertex
	for i := range n {
		name := fmt.Sprint("leaf", i)
		fw.hooks[name] = b
		leaves = append(leaves, run(name))
	}
	// Leaves reached at different depths still overlap.
	top := run("top", leaves[0], run("mid", leaves[1], leaves[2]), leaves[3])
	mustSolve(t, New(fw, nil, Options{Parallelism: n}), top)
	if fw.peak.Load() < n {
		t.Fatalf("peak concurrency %d, want %d", fw.peak.Load(), n)
	}
}

func TestParallelismBound(t *testing.T) {
	t.Parallel()
	fw := newWorker(newWorld())
	var leaves []*llb.Vertex
	b := barrier(2) // the first two must overlap; later ones pass at once
	for i := range 8 {
		name := fmt.Sprint("leaf", i)
		fw.hooks[name] = func(ctx context.Context) error {
			time.Sleep(5 * time.Millisecond)
			return b(ctx)
		}
		leaves = append(leaves, run(name))
	}
	// A chain above the leaves: waiting for inputs must hold no slot, or
	// this deadlocks with a bound of 2.
	top := run("top", run("mid1", run("mid2", leaves...)))
	mustSolve(t, New(fw, nil, Options{Parallelism: 2}), top)
	if p := fw.peak.Load(); p != 2 {
		t.Fatalf("peak concurrency %d, want exactly 2", p)
	}
	if DefaultParallelism() < 4 {
		t.Fatalf("default parallelism %d", DefaultParallelism())
	}
}

func TestErrorCancels(t *testing.T) {
	t.Parallel()
	fw := newWorker(newWorld())
	boom := errors.New("exit code 2")
	slowStarted := make(chan struct{})
	var sawCancel, slowDone atomic.Bool
	fw.hooks["slow"] = func(ctx context.Context) error {
		close(slowStarted)
		select {
		case <-ctx.Done():
			sawCancel.Store(true)
		case <-time.After(10 * time.Second):
		}
		time.Sleep(10 * time.Millisecond) // cleanup takes a moment
		slowDone.Store(true)
		return ctx.Err()
	}
	fw.hooks["fail"] = func(ctx context.Context) error {
		<-slowStarted
		return boom
	}
	rep := &recorder{}
	failing := run("fail")
	_, err := New(fw, nil, Options{Reporter: rep}).Solve(t.Context(), run("top", run("slow"), run("after", failing)))
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want %v", err, boom)
	}
	var ve *VertexError
	if !errors.As(err, &ve) || ve.Vertex.Digest() != failing.Digest() || err.Error() != "fail: exit code 2" {
		t.Fatalf("error %q does not name the failing vertex", err)
	}
	if !sawCancel.Load() || !slowDone.Load() {
		t.Fatalf("running op: saw cancel %v, finished before Solve returned %v", sawCancel.Load(), slowDone.Load())
	}
	if fw.count("after") != 0 || fw.count("top") != 0 {
		t.Fatalf("consumers of a failed vertex ran: %v", fw.execs)
	}
	if st := rep.byName("fail"); len(st) != 2 || !errors.Is(st[1].Err, boom) {
		t.Fatalf("fail statuses %+v", st)
	}
	if st := rep.byName("slow"); len(st) != 2 || !errors.Is(st[1].Err, context.Canceled) {
		t.Fatalf("slow statuses %+v", st)
	}

	// Errors are not memoized: a later solve retries.
	fw.hooks["fail"] = nil
	fw.hooks["slow"] = nil
	s := New(fw, nil, Options{})
	if _, err := s.Solve(t.Context(), failing); err != nil {
		t.Fatal(err)
	}

	// A cancelled solve returns the context's error.
	ctx, cancel := context.WithCancel(t.Context())
	fw.hooks["blocked"] = func(ctx context.Context) error { cancel(); <-ctx.Done(); return ctx.Err() }
	if _, err := New(fw, nil, Options{}).Solve(ctx, run("blocked")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled solve: %v", err)
	}
	// A ContentFunc error names the COPY.
	w := newWorld()
	_, err = New(newWorker(w), nil, Options{}).Solve(t.Context(), copyFrom(nil, local("context"), "missing.go"))
	if err == nil || !strings.Contains(err.Error(), "COPY missing.go: missing.go: not found") {
		t.Fatalf("content error: %v", err)
	}
}

func TestIgnoreCache(t *testing.T) {
	t.Parallel()
	store := openCache(t, t.TempDir())
	w := newWorld()
	v := run("step", run("base"))
	r1 := mustSolve(t, New(newWorker(w), store, Options{}), v)

	fw := newWorker(w)
	rep := &recorder{}
	r2 := mustSolve(t, New(fw, store, Options{Reporter: rep}), withIgnoreCache(v))
	if fw.count("step") != 1 || fw.count("base") != 0 || r2.id == r1.id {
		t.Fatalf("--no-cache step: executed %v, result %s (cached %s)", fw.execs, r2.id, r1.id)
	}
	if st := rep.byName("step"); len(st) != 2 || st[0].CacheMiss != "" {
		t.Fatalf("statuses %+v", st)
	}
	// The new result replaced the cached one.
	r3 := mustSolve(t, New(newWorker(w), store, Options{}), v)
	if r3.id != r2.id {
		t.Fatalf("after --no-cache the cache holds %s, want %s", r3.id, r2.id)
	}
}

func TestVolatile(t *testing.T) {
	t.Parallel()
	store := openCache(t, t.TempDir())
	w := appWorld()
	ctx := local("context")
	// By key: the consumer needs the local op's ResultDigest.
	byKey := run("ls", ctx)
	fw := newWorker(w)
	mustSolve(t, New(fw, store, Options{}), byKey)
	if fw.resultDigests != 1 {
		t.Fatalf("ResultDigest called %d times", fw.resultDigests)
	}
	fw2 := newWorker(w)
	mustSolve(t, New(fw2, store, Options{}), byKey)
	if fmt.Sprint(fw2.execs) != "map[load context:1]" {
		t.Fatalf("second build executed %v: the volatile op runs, its consumer is cached", fw2.execs)
	}
	w.setFile("context", "new", "x")
	fw3 := newWorker(w)
	mustSolve(t, New(fw3, store, Options{}), byKey)
	if fw3.count("ls") != 1 {
		t.Fatalf("changed context did not rerun its consumer: %v", fw3.execs)
	}

	// By content only: the key of the local op itself is never computed.
	fw4 := newWorker(w)
	s := New(fw4, store, Options{})
	mustSolve(t, s, copyFrom(nil, ctx, "app.go"))
	if fw4.resultDigests != 0 {
		t.Fatalf("ResultDigest called %d times without a consumer by key", fw4.resultDigests)
	}
	// Once per solver: a second Solve reuses the same read of the context.
	mustSolve(t, s, run("ls2", ctx))
	if fw4.count("load context") != 1 {
		t.Fatalf("volatile op ran %d times in one solver", fw4.count("load context"))
	}
	// Volatile results are never stored.
	n := 0
	store.Keys(func(digest.Digest, string) error { n++; return nil })
	if n != 4 { // ls (twice: two contexts), COPY app.go, ls2
		t.Fatalf("store holds %d keys, want 4", n)
	}
}

func TestProgress(t *testing.T) {
	t.Parallel()
	fw := newWorker(newWorld())
	rep := &recorder{}
	base := run("base")
	top := run("top", base, nil)
	mustSolve(t, New(fw, nil, Options{Reporter: rep}), top)
	st := rep.byName("top")
	if len(st) != 2 {
		t.Fatalf("statuses %+v", st)
	}
	start, done := st[0], st[1]
	if start.Started.IsZero() || !start.Completed.IsZero() || done.Completed.IsZero() || done.Err != nil || done.Cached {
		t.Fatalf("start %+v, done %+v", start, done)
	}
	if len(done.Inputs) != 1 || done.Inputs[0] != base.Digest() || done.Digest != top.Digest() {
		t.Fatalf("inputs %v", done.Inputs)
	}
	if done.Stats == nil || done.Stats.PidsPeak != 1 {
		t.Fatalf("stats %+v", done.Stats)
	}
	var logged bool
	for _, l := range rep.logs {
		if l.Digest == top.Digest() && l.Stream == 1 && string(l.Data) == "running top\n" {
			logged = true
		}
	}
	if !logged {
		t.Fatalf("logs %+v", rep.logs)
	}
	if _, err := New(fw, nil, Options{}).Solve(t.Context(), nil); err == nil {
		t.Fatal("nil vertex solved")
	}
}

// TestCachedProgressInGraphOrder: cached vertices are reported inputs
// first, whether their results were loaded (hits) or never needed, and a
// cached input is reported before the step that runs on it.
func TestCachedProgressInGraphOrder(t *testing.T) {
	t.Parallel()
	w := newWorld()
	store := openCache(t, t.TempDir())
	image := run("image")
	step := run("step", image)
	final := run("final", run("middle", step))
	mustSolve(t, New(newWorker(w), store, Options{}), final)

	order := func(rep *recorder) []string {
		rep.mu.Lock()
		defer rep.mu.Unlock()
		var names []string
		for _, s := range rep.statuses {
			names = append(names, s.Name)
		}
		return names
	}
	// Fully cached: only final's key is looked up, yet the report is in
	// graph order.
	rep := &recorder{}
	mustSolve(t, New(newWorker(w), store, Options{Reporter: rep}), final)
	if got := strings.Join(order(rep), ","); got != "image,step,middle,final" {
		t.Errorf("cached build reported %s, want image,step,middle,final", got)
	}
	// A new step on a cached one: the hit shows before the step starts.
	next := run("next", step)
	rep = &recorder{}
	mustSolve(t, New(newWorker(w), store, Options{Reporter: rep}), next)
	if got := strings.Join(order(rep), ","); got != "image,step,next,next" {
		t.Errorf("partly cached build reported %s, want image,step,next (start, done)", got)
	}
}

// TestProgressGroup: a vertex's progress group reaches its statuses, and
// the user sees the vertex under the group's name where a message names it
// as another step's input (COPY --link's merge is the instruction).
func TestProgressGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	grouped := func(base *llb.Vertex) (*llb.Vertex, *llb.Vertex) {
		m := run("merge", base)
		meta := m.Meta()
		meta.ProgressGroup = &llb.ProgressGroup{ID: "g", Name: "COPY --link x /"}
		m = m.WithMeta(meta)
		return m, run("top", m)
	}
	_, top := grouped(run("base"))
	mustSolve(t, New(newWorker(newWorld()), openCache(t, dir), Options{}), top)

	m, top := grouped(run("base2"))
	rep := &recorder{}
	mustSolve(t, New(newWorker(newWorld()), openCache(t, dir), Options{Reporter: rep}), top)
	st := rep.byName("merge")
	if len(st) != 2 || st[1].ProgressGroup != m.Meta().ProgressGroup {
		t.Errorf("merge statuses %+v, want its progress group", st)
	}
	if st := rep.byName("top"); len(st) != 2 || st[0].CacheMiss != "cache miss: input 0 (COPY --link x /) changed" {
		t.Errorf("top statuses %+v, want the input named by its group", st)
	}
}
