package remotecache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/registry"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
	digest "github.com/opencontainers/go-digest"
)

// Options are what imports and exports need.
type Options struct {
	// Registry speaks to registries (type=registry, inline).
	Registry *registry.Client
	// Blobs is the local blob store; imported blobs land there.
	Blobs *cache.BlobStore
	// Warn prints one line (a missing or broken cache, a failed export
	// with ignore-error).
	Warn func(string)
}

func (o Options) warn(format string, a ...any) {
	if o.Warn != nil {
		o.Warn(fmt.Sprintf(format, a...))
	}
}

// Index is the imported caches of one build: their records by key and
// where each blob can be fetched from. It is safe for concurrent use.
type Index struct {
	opt     Options
	records map[digest.Digest]importedRecord
	infos   []cache.KeyInfo
	blobs   map[digest.Digest]blobSource
	mounts  map[string]mountSource

	hitKeys         sync.Map // keys used, digest.Digest -> bool
	restored        sync.Map // cache mount ids restored -> size
	fetched         atomic.Int64
	fetchedBytes    atomic.Int64
	mu              sync.Mutex
	importedRecords int
}

type importedRecord struct {
	cfg *Config
	rec Record
}

type blobSource struct {
	b    backend
	size int64
}

type mountSource struct {
	layer cache.Layer
	src   blobSource
}

// Load reads the caches of imports. A cache that does not exist yet (the
// first CI run) is reported in one line; a broken or foreign one is ignored
// with a warning: neither fails the build. Caches listed first win when
// two have the same key.
func Load(ctx context.Context, imports []Import, opt Options) *Index {
	x := &Index{opt: opt, records: map[digest.Digest]importedRecord{}, blobs: map[digest.Digest]blobSource{}, mounts: map[string]mountSource{}}
	for _, imp := range imports {
		b, err := newImportBackend(imp, opt)
		if err != nil {
			opt.warn("cache %s: %v", imp, err)
			continue
		}
		cfg, err := loadConfig(ctx, b, opt)
		switch {
		case errors.Is(err, cache.ErrNotFound):
			opt.warn("importing cache manifest from %s: not found (nothing was exported there yet); building without it", imp)
			continue
		case err != nil:
			opt.warn("ignoring cache %s: %v", imp, err)
			continue
		}
		x.add(cfg, b)
	}
	return x
}

func newImportBackend(imp Import, opt Options) (backend, error) {
	switch imp.Type {
	case "local":
		return &localBackend{dir: imp.Src, tag: imp.Tag, digest: imp.Digest}, nil
	case "registry":
		if opt.Registry == nil {
			return nil, errors.New("no registry client")
		}
		return &registryBackend{reg: opt.Registry, ref: imp.Ref}, nil
	}
	return nil, fmt.Errorf("cache type %q is not supported", imp.Type)
}

// loadConfig fetches and checks the cache config of b: from a cache
// manifest, or (inline cache) from the config of an image.
func loadConfig(ctx context.Context, b backend, opt Options) (*Config, error) {
	raw, err := b.manifest(ctx)
	if err != nil {
		return nil, err
	}
	desc, err := configDescriptor(raw)
	if errors.Is(err, errImage) {
		return inlineConfig(ctx, b, desc)
	}
	if err != nil {
		return nil, err
	}
	blob, err := b.readBlob(ctx, desc, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("cache config %s: %w", desc.Digest, err)
	}
	return DecodeConfig(blob)
}

// add indexes the records and blobs of cfg, found in b.
func (x *Index) add(cfg *Config, b backend) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var digests []digest.Digest
	for _, l := range cfg.Layers {
		if _, ok := x.blobs[l.Digest]; !ok {
			x.blobs[l.Digest] = blobSource{b: b, size: l.Size}
			digests = append(digests, l.Digest)
		}
	}
	if repo := b.repo(); repo != "" && x.opt.Registry != nil {
		// Pushing these blobs to another repository of the registry
		// mounts them; a later process can still fetch them.
		x.opt.Registry.AddBlobSources(repo, digests)
	}
	for _, r := range cfg.Records {
		if _, ok := x.records[r.Key]; ok {
			continue
		}
		x.records[r.Key] = importedRecord{cfg: cfg, rec: r}
		x.importedRecords++
		if r.Info != nil {
			info := *r.Info
			info.Key = r.Key
			x.infos = append(x.infos, info)
		}
	}
	for _, m := range cfg.Mounts {
		if _, ok := x.mounts[m.ID]; ok {
			continue
		}
		bl := cfg.Layers[m.Layer]
		x.mounts[m.ID] = mountSource{
			layer: cache.Layer{MediaType: bl.MediaType, Digest: bl.Digest, Size: bl.Size, DiffID: bl.DiffID},
			src:   blobSource{b: b, size: bl.Size},
		}
	}
}

// Records is the number of records imported.
func (x *Index) Records() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.importedRecords
}

// Stats says what the build took from the imported caches: results used
// (hits), and blobs (and their bytes) downloaded.
func (x *Index) Stats() (hits, blobs, bytes int64) {
	x.hitKeys.Range(func(any, any) bool { hits++; return true })
	return hits, x.fetched.Load(), x.fetchedBytes.Load()
}

// lookup returns the chain of key.
func (x *Index) lookup(key digest.Digest) ([]ops.ChainLink, bool) {
	x.mu.Lock()
	r, ok := x.records[key]
	x.mu.Unlock()
	if !ok {
		return nil, false
	}
	return r.cfg.chain(r.rec.Result), true
}

// CanFetch implements cache.Fetcher: blobs of the imported caches, else
// those the registry client knows a repository of.
func (x *Index) CanFetch(d digest.Digest) bool {
	x.mu.Lock()
	_, ok := x.blobs[d]
	x.mu.Unlock()
	return ok || (x.opt.Registry != nil && x.opt.Registry.CanFetch(d))
}

// Fetch implements cache.Fetcher, counting what it downloads.
func (x *Index) Fetch(ctx context.Context, d digest.Digest) error {
	x.mu.Lock()
	src, ok := x.blobs[d]
	x.mu.Unlock()
	var err error
	switch {
	case ok:
		err = src.b.fetch(ctx, x.opt.Blobs, d, src.size)
	case x.opt.Registry != nil:
		err = x.opt.Registry.Fetch(ctx, d)
	default:
		err = fmt.Errorf("blob %s: %w", d, cache.ErrNotFound)
	}
	if err != nil {
		return err
	}
	x.fetched.Add(1)
	if n, err := x.opt.Blobs.Stat(d); err == nil {
		x.fetchedBytes.Add(n)
	}
	return nil
}

// LocalKeys is the local key store (cache.Store).
type LocalKeys interface {
	solver.KeyStore
	solver.KeyRecorder
	solver.MissExplainer
}

// Importer makes a worker result of an imported chain (ops.Worker).
type Importer interface {
	ImportChain(chain []ops.ChainLink) (string, error)
}

// KeyStore is the solver's key store of a build with imported caches: the
// local store first, then the imported records, which become lazy results.
type KeyStore struct {
	local LocalKeys
	x     *Index
	w     Importer
}

// KeyStore returns the key store over local that also finds the keys of
// x, importing their results into w.
func (x *Index) KeyStore(local LocalKeys, w Importer) *KeyStore {
	return &KeyStore{local: local, x: x, w: w}
}

// Load implements solver.KeyStore.
func (k *KeyStore) Load(key digest.Digest) (string, bool, error) {
	id, ok, err := k.local.Load(key)
	if ok || err != nil {
		return id, ok, err
	}
	chain, ok := k.x.lookup(key)
	if !ok {
		return "", false, nil
	}
	id, err = k.w.ImportChain(chain)
	if err != nil {
		k.x.opt.warn("ignoring cache record %s: %v", key, err)
		return "", false, nil
	}
	k.x.hitKeys.Store(key, true)
	return id, true, nil
}

// Save implements solver.KeyStore.
func (k *KeyStore) Save(key digest.Digest, id string) error { return k.local.Save(key, id) }

// SaveKey implements solver.KeyRecorder.
func (k *KeyStore) SaveKey(info solver.KeyInfo, id string) error { return k.local.SaveKey(info, id) }

// ExplainMiss implements solver.MissExplainer: the local store's
// explanation, or the imported caches' when the local store never saw the
// step (a fresh CI runner).
func (k *KeyStore) ExplainMiss(info solver.KeyInfo) string {
	s := k.local.ExplainMiss(info)
	if s != cache.NotBuiltBefore {
		return s
	}
	k.x.mu.Lock()
	infos := k.x.infos
	k.x.mu.Unlock()
	if len(infos) == 0 {
		return s
	}
	return cache.ExplainMissAmong(info, infos)
}
