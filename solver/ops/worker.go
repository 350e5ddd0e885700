package ops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/registry"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops/internal/fileop"
)

// Runner runs a process in the sandbox (package executor).
type Runner interface {
	Run(ctx context.Context, spec executor.Spec) (executor.Stats, error)
}

// ImageSource resolves and pulls images (package registry).
type ImageSource interface {
	Resolve(ctx context.Context, ref string, p llb.Platform) (*registry.Resolved, error)
	Pull(ctx context.Context, r *registry.Resolved) ([]cache.Layer, error)
}

// MetaStore keeps result records (package cache).
type MetaStore interface {
	Put(id string, v any) error
	Get(id string, v any) error
}

// LocalDir is a directory on the client offered to the build under a name.
type LocalDir struct {
	Path string
	// IgnoreFile names the ignore file whose patterns (the LocalOp's
	// ExcludePatterns) filter it, in errors about an excluded source
	// ("" = ".dockerignore").
	IgnoreFile string
}

// Options configure a Worker.
type Options struct {
	Snapshotter snapshot.Snapshotter
	Runner      Runner
	Images      ImageSource
	Meta        MetaStore
	Blobs       *cache.BlobStore
	Hasher      fileop.Hasher
	// Locals are the local sources by LocalOp.Name ("context").
	Locals map[string]LocalDir
	// Limits and CgroupParent apply to every exec.
	Limits       executor.Limits
	CgroupParent string
	// Hostname of every exec; "" = executor default.
	Hostname string
	// StateDir holds the worker's own state (cache mounts).
	StateDir string
	// MaxLayerSize bounds the uncompressed size of a pulled layer (0 =
	// DefaultMaxLayerSize, negative = no limit).
	MaxLayerSize int64
	// Secrets serves RUN --mount=type=secret; nil = no secrets.
	Secrets SecretStore
	// SSH maps ssh ids ("default") to agent sockets for RUN
	// --mount=type=ssh.
	SSH map[string]string
	// Warn, when set, is told about damage found in the root (a corrupt
	// or missing blob) that the worker works around by rebuilding or
	// fetching again.
	Warn func(msg string)
}

// Worker implements solver.Worker.
type Worker struct {
	opt Options

	mu      sync.Mutex
	records map[string]*record // loaded records by id
	layerMu keyedMutex         // serialises layer computation per record
	mounts  mountState         // cache mount sharing
	// restorer fills new cache mounts; usedMounts are the cache mount ids
	// this build used (both under mu).
	restorer   CacheMountRestorer
	usedMounts map[string]bool
}

// New returns a worker.
func New(opt Options) *Worker {
	return &Worker{opt: opt, records: map[string]*record{}}
}

// ResolveOp implements solver.Worker.
func (w *Worker) ResolveOp(v *llb.Vertex) (solver.Op, error) {
	switch op := v.Op().(type) {
	case llb.ImageOp:
		return &imageOp{w: w, v: v, op: op}, nil
	case llb.LocalOp:
		return &localOp{w: w, v: v, op: op}, nil
	case llb.ExecOp:
		return &execOp{w: w, v: v, op: op}, nil
	case llb.FileOp:
		return &fileOp{w: w, v: v, op: op}, nil
	case llb.HTTPOp:
		return &httpOp{w: w, v: v, op: op}, nil
	case llb.GitOp:
		return &gitOp{w: w, v: v, op: op}, nil
	case llb.MergeOp:
		return &mergeOp{w: w, v: v}, nil
	default:
		return nil, fmt.Errorf("unsupported op %T", op)
	}
}

// LoadResult implements solver.Worker.
func (w *Worker) LoadResult(ctx context.Context, id string) (solver.Result, error) {
	rec, err := w.loadRecord(id)
	if err != nil {
		return nil, err
	}
	if rec.Snapshot != "" && !rec.Lazy {
		if _, err := w.opt.Snapshotter.Stat(ctx, rec.Snapshot); err != nil {
			if errors.Is(err, snapshot.ErrNotFound) {
				return nil, fmt.Errorf("result %s: snapshot %s: %w", id, rec.Snapshot, solver.ErrNotFound)
			}
			return nil, err
		}
	}
	if err := w.checkImageLayers(rec); err != nil {
		return nil, fmt.Errorf("result %s: %w", id, err)
	}
	return &Ref{w: w, rec: rec}, nil
}

// checkImageLayers verifies the pulled layers a result is built on (see
// cache.BlobStore.Verify: hashed once, then checked by a stamp). A record
// of the chain or a layer blob that is missing or corrupt makes the result
// absent (solver.ErrNotFound), so the image is pulled and the steps are run
// again; the layers of steps are checked when they are exported, where a
// damaged one is diffed again from its snapshot.
func (w *Worker) checkImageLayers(rec *record) error {
	if w.opt.Blobs == nil {
		return nil
	}
	items, err := w.layerItems(rec)
	if err != nil {
		if errors.Is(err, solver.ErrNotFound) {
			return err
		}
		return fmt.Errorf("%v: %w", err, solver.ErrNotFound)
	}
	for _, it := range items {
		if it.image == nil {
			continue
		}
		if err := w.opt.Blobs.Verify(it.image.Digest, it.image.Size); err != nil {
			w.warn(fmt.Sprintf("base image layer %s is missing or damaged: pulling it again (%v)", it.image.Digest, err))
			return fmt.Errorf("layer %s: %v: %w", it.image.Digest, err, solver.ErrNotFound)
		}
	}
	return nil
}

func (w *Worker) warn(msg string) {
	if w.opt.Warn != nil {
		w.opt.Warn(msg)
	}
}

func (w *Worker) loadRecord(id string) (*record, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r, ok := w.records[id]; ok {
		return r, nil
	}
	var r record
	if err := w.opt.Meta.Get(id, &r); err != nil {
		if errors.Is(err, cache.ErrNotFound) {
			return nil, fmt.Errorf("result %s: %w", id, solver.ErrNotFound)
		}
		return nil, err
	}
	r.ID = id
	w.records[id] = &r
	return &r, nil
}

func (w *Worker) saveRecord(r *record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.putRecordLocked(r)
}

// putRecordLocked stores r, after the imported records it is built on that
// were kept in memory only (see ImportChain): a stored record never names
// one that is not stored. w.mu is held.
func (w *Worker) putRecordLocked(r *record) error {
	for _, id := range append([]string{r.Parent}, r.Merge...) {
		if dep, ok := w.records[id]; ok && id != "" && dep.pending {
			if err := w.putRecordLocked(dep); err != nil {
				return err
			}
		}
	}
	if err := w.opt.Meta.Put(r.ID, r); err != nil {
		return err
	}
	r.pending = false
	w.records[r.ID] = r
	return nil
}

// record is a stored result.
type record struct {
	ID string `json:"-"`
	// Snapshot is the committed snapshot holding the tree ("" = empty tree).
	Snapshot string `json:"snapshot"`
	// Image is true for an image result, whose layers are ImageLayers.
	Image bool `json:"image,omitempty"`
	// Image results: the image's layers, base first.
	ImageLayers []cache.Layer `json:"imageLayers,omitempty"`
	// Step results: the record this one was built on ("" = scratch) and
	// the step's own layer once computed.
	Parent string       `json:"parent,omitempty"`
	Layer  *cache.Layer `json:"layer,omitempty"`
	// Merge results: the records of the merged inputs in order ("" =
	// scratch); the result's layers are theirs, and it has none of its own.
	Merge []string `json:"merge,omitempty"`
	// Empty is true when the step changed nothing: its layer is then the
	// empty layer (emptyLayerGzip).
	Empty bool `json:"empty,omitempty"`
	// Computed is true once Layer is known.
	Computed bool `json:"computed,omitempty"`
	// Created is when the step's result was made (step and merge results):
	// the history time of its layer in every image built on it, so that a
	// cached rebuild reproduces the image of the build that made it, as
	// BuildKit keeps a layer's creation time with its cache record.
	Created time.Time `json:"created,omitempty"`
	// Lazy is set for a result imported from a remote cache (see
	// ImportChain): its layers may be neither downloaded nor unpacked yet,
	// and Snapshot, once set, can be made again from them.
	Lazy bool `json:"lazy,omitempty"`
	// pending is set on an imported record not stored yet: it is stored
	// when a stored record is built on it or it is unpacked, so a build
	// that only reuses remote results writes none.
	pending bool
}

// Ref is a result backed by a record.
type Ref struct {
	w   *Worker
	rec *record
}

// ID implements solver.Result.
func (r *Ref) ID() string { return r.rec.ID }

// snapshotName returns the committed snapshot of a result ("" = empty).
func snapshotName(r solver.Result) (string, error) {
	switch x := r.(type) {
	case nil:
		return "", nil
	case *Ref:
		return x.rec.Snapshot, nil
	default:
		return "", fmt.Errorf("a %T cannot be used as a filesystem here", r)
	}
}

func recordID(r solver.Result) string {
	if x, ok := r.(*Ref); ok {
		return x.rec.ID
	}
	return ""
}

func newID(prefix string) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b)
}

// keyedMutex is a set of mutexes by key.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*sync.Mutex{}
	}
	l, ok := k.m[key]
	if !ok {
		l = &sync.Mutex{}
		k.m[key] = l
	}
	k.mu.Unlock()
	l.Lock()
	return l.Unlock
}
