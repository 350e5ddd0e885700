package solver

import (
	"context"
	"io"
	"time"

	"github.com/builderdev/builder/llb"
	digest "github.com/opencontainers/go-digest"
)

// Result is the output of an op: a handle the worker understands (a committed
// snapshot, a local directory, ...). The solver only passes results from op
// to op and stores their IDs in the cache.
type Result interface {
	// ID identifies the result to Worker.LoadResult in a later build. An
	// empty ID means the result cannot be stored (it is volatile).
	ID() string
}

// Worker turns llb ops into runnable ops and reloads cached results. It is
// implemented by solver/ops and by fakes in tests.
type Worker interface {
	// ResolveOp returns the implementation of v's op.
	ResolveOp(v *llb.Vertex) (Op, error)
	// LoadResult reopens a result that an earlier build stored under id. It
	// returns an error wrapping ErrNotFound when the result is gone (e.g.
	// pruned); the solver then treats the key as a miss.
	LoadResult(ctx context.Context, id string) (Result, error)
}

// Op is an executable op.
type Op interface {
	// CacheMap says how to compute the op's cache key. It must be cheap: it
	// may do a network round trip (resolving a tag) but no real work.
	CacheMap(ctx context.Context) (*CacheMap, error)
	// Exec runs the op on its inputs' results (in the order of the vertex's
	// inputs; nil for a scratch input). Output written to LogWriter(ctx, ...)
	// is shown as the vertex's log.
	Exec(ctx context.Context, inputs []Result) (Result, error)
}

// CacheMap describes an op's cache key:
//
//	key = sha256(Digest, dep_0, ..., dep_n)
//
// where dep_i is Deps[i].ContentFunc(result of input i) when set and the
// cache key of input i otherwise.
type CacheMap struct {
	// Digest is the op's own contribution, usually the vertex digest.
	Digest digest.Digest
	// Deps has one entry per input (or is nil: all inputs by cache key).
	Deps []CacheDep
	// Volatile ops (a local context) are run on every build and never
	// stored; their key is sha256(Digest, ResultDigest(result)).
	Volatile bool
	// ResultDigest, for volatile ops, digests the whole result. The solver
	// calls it only when a consumer needs the volatile op's key.
	ResultDigest func(ctx context.Context, r Result) (digest.Digest, error)
}

// CacheDep is how one input contributes to a cache key.
type CacheDep struct {
	// ContentFunc, when set, derives the input's contribution from its
	// content, e.g. the checksum of exactly the files a COPY reads. The input
	// must then be executed (or loaded) even when the op is cached.
	ContentFunc func(ctx context.Context, r Result) (digest.Digest, error)
}

// KeyStore maps cache keys to result IDs. It is implemented by package cache.
type KeyStore interface {
	// Load returns the result ID stored for key; ok is false on a miss.
	Load(key digest.Digest) (id string, ok bool, err error)
	// Save records that key produced the result id.
	Save(key digest.Digest, id string) error
}

// Status is the state of a vertex, sent to the Reporter on every change.
type Status struct {
	Digest digest.Digest
	Name   string
	// Inputs are the digests of the vertex's non-nil inputs.
	Inputs    []digest.Digest
	Started   time.Time // zero until started
	Completed time.Time // zero until done
	Cached    bool
	Err       error
	// CacheMiss, set on the statuses of a vertex that runs because its key
	// missed, says why, ready to print: "cache miss: input 1 (COPY app.go)
	// changed" (see MissExplainer). Empty for hits, volatile ops and
	// --no-cache.
	CacheMiss string
	// Stats is resource accounting reported by the op (see ReportStats).
	Stats *Stats
	// ProgressGroup is the vertex's llb.Meta ProgressGroup.
	ProgressGroup *llb.ProgressGroup
}

// Stats is the resource use of one step, measured from its cgroup.
type Stats struct {
	CPUUser    time.Duration
	CPUSystem  time.Duration
	MemoryPeak uint64
	IORead     uint64
	IOWrite    uint64
	PidsPeak   uint64
	Wall       time.Duration
}

// Log is a chunk of a vertex's output.
type Log struct {
	Digest    digest.Digest
	Stream    int // 1 stdout, 2 stderr
	Data      []byte
	Timestamp time.Time
}

// Reporter receives progress. Calls come from many goroutines; an
// implementation must be safe for concurrent use and must not block long.
type Reporter interface {
	Status(Status)
	Log(Log)
}

// LogWriter returns the writer for stream (1 or 2) of the vertex whose Exec
// runs with ctx; it discards when there is no reporter.
func LogWriter(ctx context.Context, stream int) io.Writer {
	return logWriterFrom(ctx, stream)
}

// ReportStats attaches resource accounting to the vertex whose Exec runs with
// ctx; it is shown with the vertex's completion.
func ReportStats(ctx context.Context, s Stats) {
	reportStatsFrom(ctx, s)
}
