package solver

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/builderdev/builder/llb"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// Options configure a Solver.
type Options struct {
	// Parallelism bounds how many Exec calls run at once; <= 0 means
	// DefaultParallelism(). Waiting for inputs, computing keys and loading
	// cached results take no slot.
	Parallelism int
	// Reporter receives progress; nil discards it.
	Reporter Reporter
	// Explainer explains cache misses (Status.CacheMiss). When nil, the
	// KeyStore is used if it implements MissExplainer (cache.Store does).
	Explainer MissExplainer
}

// DefaultParallelism is twice the number of CPUs, and at least 4. An Exec
// slot is held both by CPU-bound steps (RUN make) and by steps that mostly
// wait on the network or the disk (pulling an image, copying a context);
// twice the CPUs lets the waiting kind overlap with the busy kind, while
// still bounding how many sandboxes, snapshots and downloads exist at once.
func DefaultParallelism() int {
	return max(4, 2*runtime.NumCPU())
}

// Solver runs llb graphs. Results and keys are memoized per vertex digest for
// the Solver's lifetime (one build): a vertex is executed at most once, even
// when several Solve calls need it at the same time. A vertex that appears
// under the same digest with other metadata (name, IgnoreCache) is run with
// the metadata of the first one seen.
type Solver struct {
	w       Worker
	keys    KeyStore
	rec     KeyRecorder
	explain MissExplainer
	rep     Reporter
	sem     chan struct{}

	mu     sync.Mutex
	states map[digest.Digest]*vertexState
}

// New returns a solver that runs ops of w and stores keys in keys. A nil
// keys stores nothing: every vertex is a miss (but still runs once).
func New(w Worker, keys KeyStore, opt Options) *Solver {
	if keys == nil {
		keys = noKeys{}
	}
	p := opt.Parallelism
	if p <= 0 {
		p = DefaultParallelism()
	}
	s := &Solver{
		w:       w,
		keys:    keys,
		explain: opt.Explainer,
		rep:     opt.Reporter,
		sem:     make(chan struct{}, p),
		states:  map[digest.Digest]*vertexState{},
	}
	s.rec, _ = keys.(KeyRecorder)
	if s.explain == nil {
		s.explain, _ = keys.(MissExplainer)
	}
	return s
}

// Solve returns the result of v, executing what is not cached. On error it
// returns the first error, as a *VertexError naming the vertex where it
// happened, after the work it cancelled has stopped.
//
// Vertices of v's graph that were not needed (the inputs of a cached vertex)
// are reported once as cached, as BuildKit shows them: their keys were
// computed and the result that depends on them was reused. Cached vertices
// are reported in graph order, before the first step that runs on them or
// at the end.
func (s *Solver) Solve(ctx context.Context, v *llb.Vertex) (Result, error) {
	if v == nil {
		return nil, errors.New("solve: nil vertex (scratch has no result)")
	}
	r, err := s.state(v).result(ctx)
	if err != nil {
		s.flushHits(v) // the steps that were cached still show
		return nil, err
	}
	s.reportUnneeded(v)
	return r, nil
}

// CacheKey returns the cache key of v, executing only what the key depends
// on (ContentFunc inputs, volatile ops).
func (s *Solver) CacheKey(ctx context.Context, v *llb.Vertex) (digest.Digest, error) {
	if v == nil {
		return scratchKey, nil
	}
	info, err := s.state(v).key(ctx)
	return info.Key, err
}

// state returns the memo of v, creating it and its inputs' memos.
func (s *Solver) state(v *llb.Vertex) *vertexState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stateLocked(v)
}

func (s *Solver) stateLocked(v *llb.Vertex) *vertexState {
	d := v.Digest()
	if st, ok := s.states[d]; ok {
		return st
	}
	st := &vertexState{s: s, v: v, dgst: d}
	for _, in := range v.Inputs() {
		if in == nil {
			st.inputs = append(st.inputs, nil)
			continue
		}
		st.inputs = append(st.inputs, s.stateLocked(in))
		st.inputDigests = append(st.inputDigests, in.Digest())
	}
	s.states[d] = st
	return st
}

// flushHits reports as cached, in graph order (inputs first), the cache
// hits among v's inputs and the inputs those hits made unnecessary, that
// are not reported yet. It runs before v starts, so the progress shows a
// cached FROM before the RUN that uses it rather than when its key happened
// to be looked up.
func (s *Solver) flushHits(v *llb.Vertex) {
	if s.rep == nil {
		return
	}
	// The vertices below a hit: the hit's own inputs were not needed.
	below := map[digest.Digest]bool{}
	var mark func(x *llb.Vertex)
	mark = func(x *llb.Vertex) {
		for _, in := range x.Inputs() {
			if in != nil && !below[in.Digest()] {
				below[in.Digest()] = true
				mark(in)
			}
		}
	}
	var flush []*vertexState
	llb.Walk(v, func(x *llb.Vertex) error {
		s.mu.Lock()
		st := s.states[x.Digest()]
		s.mu.Unlock()
		if st != nil && st.hit.Load() {
			mark(x)
		}
		if st != nil {
			flush = append(flush, st)
		}
		return nil
	})
	for _, st := range flush {
		if (st.hit.Load() || below[st.dgst]) && st.claimed.CompareAndSwap(false, true) {
			now := time.Now()
			s.rep.Status(st.status(now, now, true))
		}
	}
}

func (s *Solver) reportUnneeded(v *llb.Vertex) {
	if s.rep == nil {
		return
	}
	llb.Walk(v, func(x *llb.Vertex) error {
		s.mu.Lock()
		st := s.states[x.Digest()]
		s.mu.Unlock()
		if st != nil && st.claimed.CompareAndSwap(false, true) {
			now := time.Now()
			s.rep.Status(st.status(now, now, true))
		}
		return nil
	})
}

// vertexState is the memo of one vertex digest.
type vertexState struct {
	s            *Solver
	v            *llb.Vertex
	dgst         digest.Digest
	inputs       []*vertexState // nil entries are scratch
	inputDigests []digest.Digest

	prep flight[*prepared]
	keyf flight[KeyInfo]
	res  flight[Result]

	// claimed is set once a status sequence for the vertex was reported
	// (or is being reported).
	claimed atomic.Bool
	// hit is set when the vertex's result came from the cache; it is
	// reported as cached by flushHits or reportUnneeded.
	hit atomic.Bool
}

type prepared struct {
	op Op
	cm CacheMap
}

// scratchKey is the key of a nil input.
var scratchKey = digest.FromString("scratch")

func (st *vertexState) status(started, completed time.Time, cached bool) Status {
	return Status{
		Digest:        st.dgst,
		Name:          st.v.Name(),
		Inputs:        st.inputDigests,
		Started:       started,
		Completed:     completed,
		Cached:        cached,
		ProgressGroup: st.v.Meta().ProgressGroup,
	}
}

// fail reports an error of the vertex's own work (not of an input, not a
// cancellation) and returns it wrapped.
func (st *vertexState) fail(ctx context.Context, err error) error {
	var ve *VertexError
	if ctx.Err() == nil && !errors.As(err, &ve) && st.s.rep != nil {
		st.claimed.Store(true)
		now := time.Now()
		s := st.status(now, now, false)
		s.Err = err
		st.s.rep.Status(s)
	}
	return wrap(st.v, err)
}

func (st *vertexState) prepare(ctx context.Context) (*prepared, error) {
	return st.prep.do(ctx, func(ctx context.Context) (*prepared, error) {
		op, err := st.s.w.ResolveOp(st.v)
		if err != nil {
			return nil, st.fail(ctx, err)
		}
		cm, err := op.CacheMap(ctx)
		if err != nil {
			// The op's own error says what failed (a source that cannot
			// be resolved, a file that cannot be read): no internal prefix.
			return nil, st.fail(ctx, err)
		}
		if cm == nil {
			return nil, st.fail(ctx, errors.New("cache map: op returned none"))
		}
		if cm.Deps != nil && len(cm.Deps) != len(st.inputs) {
			return nil, st.fail(ctx, fmt.Errorf("cache map: %d deps for %d inputs", len(cm.Deps), len(st.inputs)))
		}
		p := &prepared{op: op, cm: *cm}
		if p.cm.Digest == "" {
			p.cm.Digest = st.dgst
		}
		return p, nil
	})
}

func (st *vertexState) key(ctx context.Context) (KeyInfo, error) {
	return st.keyf.do(ctx, st.computeKey)
}

func (st *vertexState) result(ctx context.Context) (Result, error) {
	return st.res.do(ctx, st.computeResult)
}

// keyDigest is sha256(op, dep_0, ..., dep_n), each followed by a newline.
func keyDigest(op digest.Digest, inputs []KeyInput) digest.Digest {
	h := digest.Canonical.Digester()
	w := h.Hash()
	w.Write([]byte(op))
	w.Write([]byte{'\n'})
	for _, in := range inputs {
		w.Write([]byte(in.Digest))
		w.Write([]byte{'\n'})
	}
	return h.Digest()
}

func (st *vertexState) computeKey(ctx context.Context) (KeyInfo, error) {
	p, err := st.prepare(ctx)
	if err != nil {
		return KeyInfo{}, err
	}
	info := KeyInfo{Name: st.v.Name(), Op: p.cm.Digest}
	if p.cm.Volatile {
		if p.cm.ResultDigest == nil {
			return KeyInfo{}, st.fail(ctx, errors.New("volatile op has no ResultDigest: a consumer needs its cache key"))
		}
		r, err := st.result(ctx)
		if err != nil {
			return KeyInfo{}, err
		}
		d, err := p.cm.ResultDigest(ctx, r)
		if err != nil {
			return KeyInfo{}, st.fail(ctx, fmt.Errorf("digesting result: %w", err))
		}
		info.Inputs = []KeyInput{{Name: "result", Digest: d, Content: true}}
		info.Key = keyDigest(info.Op, info.Inputs)
		return info, nil
	}

	info.Inputs = make([]KeyInput, len(st.inputs))
	g, gctx := errgroup.WithContext(ctx)
	for i, in := range st.inputs {
		var content func(context.Context, Result) (digest.Digest, error)
		if p.cm.Deps != nil {
			content = p.cm.Deps[i].ContentFunc
		}
		g.Go(func() error {
			var ki KeyInput
			if in != nil {
				// As the user sees it (a COPY --link, not its merge).
				ki.Name = in.v.StepName()
			}
			switch {
			case content != nil:
				var r Result
				if in != nil {
					var err error
					if r, err = in.result(gctx); err != nil {
						return err
					}
				}
				d, err := content(gctx, r)
				if err != nil {
					// The op says what it could not read (e.g. a missing
					// COPY source, with its line); the vertex name is added.
					return st.fail(gctx, err)
				}
				ki.Digest, ki.Content = d, true
			case in == nil:
				ki.Digest = scratchKey
			default:
				k, err := in.key(gctx)
				if err != nil {
					return err
				}
				ki.Digest = k.Key
				if in.v.Meta().IgnoreCache && !st.v.Meta().IgnoreCache {
					// The input runs again (--no-cache-filter): what is
					// built on it must not come from the cache of what
					// was built on its previous result.
					r, err := in.result(gctx)
					if err != nil {
						return err
					}
					if r != nil && r.ID() != "" {
						ki.Digest = digest.FromString(k.Key.String() + " rebuilt as " + r.ID())
					}
				}
			}
			info.Inputs[i] = ki
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return KeyInfo{}, err
	}
	info.Key = keyDigest(info.Op, info.Inputs)
	return info, nil
}

func (st *vertexState) computeResult(ctx context.Context) (Result, error) {
	s := st.s
	p, err := st.prepare(ctx)
	if err != nil {
		return nil, err
	}
	var info KeyInfo
	var miss string
	if !p.cm.Volatile {
		if info, err = st.key(ctx); err != nil {
			return nil, err
		}
		if !st.v.Meta().IgnoreCache {
			id, ok, err := s.keys.Load(info.Key)
			if err != nil {
				return nil, st.fail(ctx, fmt.Errorf("loading cache key %s: %w", info.Key, err))
			}
			switch {
			case ok:
				r, err := s.w.LoadResult(ctx, id)
				if err == nil {
					// Reported when a consumer starts or at the end,
					// in graph order (see flushHits).
					st.hit.Store(true)
					return r, nil
				}
				if !errors.Is(err, ErrNotFound) {
					return nil, st.fail(ctx, fmt.Errorf("loading cached result %q: %w", id, err))
				}
				miss = "cache miss: the cached result is gone"
			case s.explain != nil:
				miss = s.explain.ExplainMiss(info)
			}
		}
	}

	inputs := make([]Result, len(st.inputs))
	g, gctx := errgroup.WithContext(ctx)
	for i, in := range st.inputs {
		if in == nil {
			continue
		}
		g.Go(func() error {
			r, err := in.result(gctx)
			inputs[i] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	if locker, ok := s.keys.(KeyLocker); ok && !p.cm.Volatile && !st.v.Meta().IgnoreCache {
		// Another process may be running this very step: wait for it and
		// take its result.
		unlock, err := locker.LockKey(ctx, info.Key)
		if err != nil {
			return nil, st.fail(ctx, fmt.Errorf("waiting for cache key %s: %w", info.Key, err))
		}
		defer unlock()
		if id, ok, err := s.keys.Load(info.Key); err == nil && ok {
			if r, err := s.w.LoadResult(ctx, id); err == nil {
				st.hit.Store(true)
				return r, nil
			}
		}
	}

	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	r, err := st.exec(ctx, p.op, inputs, miss)
	<-s.sem
	if err != nil {
		return nil, wrap(st.v, err)
	}
	if r == nil {
		return nil, wrap(st.v, errors.New("op returned no result"))
	}
	if id := r.ID(); !p.cm.Volatile && id != "" {
		if s.rec != nil {
			err = s.rec.SaveKey(info, id)
		} else {
			err = s.keys.Save(info.Key, id)
		}
		if err != nil {
			return nil, st.fail(ctx, fmt.Errorf("saving cache key %s: %w", info.Key, err))
		}
	}
	return r, nil
}

// exec runs op with progress: started, then completed with stats or error.
func (st *vertexState) exec(ctx context.Context, op Op, inputs []Result, miss string) (Result, error) {
	s := st.s
	s.flushHits(st.v)
	st.claimed.Store(true)
	status := st.status(time.Now(), time.Time{}, false)
	status.CacheMiss = miss
	if s.rep != nil {
		s.rep.Status(status)
	}
	var mu sync.Mutex
	var stats *Stats
	ectx := withExecInfo(ctx, st.dgst, s.rep, func(x Stats) {
		mu.Lock()
		stats = &x
		mu.Unlock()
	})
	r, err := op.Exec(ectx, inputs)
	if s.rep != nil {
		mu.Lock()
		status.Stats = stats
		mu.Unlock()
		status.Completed = time.Now()
		status.Err = err
		s.rep.Status(status)
	}
	return r, err
}

// noKeys is the KeyStore of a Solver without a cache.
type noKeys struct{}

func (noKeys) Load(digest.Digest) (string, bool, error) { return "", false, nil }
func (noKeys) Save(digest.Digest, string) error         { return nil }
