package remotecache

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
	digest "github.com/opencontainers/go-digest"
)

// Build is what a cache export reads from the build that just finished.
type Build struct {
	// Keys are the keyed vertices of the build (solver.Solver.Keys).
	Keys []solver.KeyedVertex
	// Final is the result of the build's target.
	Final solver.Result
	// Finals are the target results of a multi-platform build's other
	// platforms (Final is the first's): mode=min keeps what any of them is
	// made of.
	Finals []solver.Result
	// KeyStore maps the keys to results (the store the build used).
	KeyStore solver.KeyStore
	// Worker describes results as layers.
	Worker *ops.Worker
}

// Report says what an export did.
type Report struct {
	Records, Layers int
	// Uploaded and UploadedBytes count the blobs copied; the others were
	// present at the destination or mounted from another repository.
	Uploaded      int
	UploadedBytes int64
	// Unchanged is set when the destination already held this exact
	// cache: nothing was written.
	Unchanged bool
	// Mounts are the exported cache mounts (cache-mounts=true).
	Mounts []MountReport
}

// MountReport is one exported cache mount and its compressed size.
type MountReport struct {
	ID   string
	Size int64
}

// Write exports the cache of b as e says.
func Write(ctx context.Context, e Export, b Build, opt Options) (*Report, error) {
	if e.Type == "inline" {
		return nil, errors.New("type=inline is written with the image (see Inline)")
	}
	bl, err := collect(ctx, e, b)
	if err != nil {
		return nil, err
	}
	rep := &Report{}
	if e.CacheMounts {
		ms, err := exportMounts(ctx, b.Worker, opt.Blobs, opt)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			rep.Mounts = append(rep.Mounts, MountReport{ID: m.id, Size: m.layer.Size})
			bl.addMount(m.id, m.layer)
		}
	}
	cfg, layers := bl.config()
	rep.Records, rep.Layers = len(cfg.Records), len(layers)
	cfgRaw, err := EncodeConfig(cfg)
	if err != nil {
		return nil, err
	}
	raw, mt, err := manifest(e, cfgRaw, layers)
	if err != nil {
		return nil, err
	}
	bk, err := newExportBackend(e, opt)
	if err != nil {
		return nil, err
	}
	// An unchanged build exports an unchanged cache: nothing to write.
	if old, err := bk.manifest(ctx); err == nil && bytes.Equal(old, raw) {
		rep.Unchanged = true
		return rep, nil
	}
	cd, n, err := opt.Blobs.Put(ctx, bytes.NewReader(cfgRaw), "", int64(len(cfgRaw)))
	if err != nil {
		return nil, fmt.Errorf("storing cache config: %w", err)
	}
	blobs := append(append([]cache.Layer(nil), layers...), cache.Layer{MediaType: ConfigMediaType, Digest: cd, Size: n})
	seen := map[digest.Digest]bool{}
	for _, l := range blobs {
		if seen[l.Digest] {
			continue
		}
		seen[l.Digest] = true
		up, err := bk.pushBlob(ctx, opt.Blobs, l)
		if err != nil {
			return nil, err
		}
		if up {
			rep.Uploaded++
			rep.UploadedBytes += l.Size
		}
	}
	if err := bk.putManifest(ctx, raw, mt); err != nil {
		return nil, err
	}
	return rep, nil
}

func newExportBackend(e Export, opt Options) (backend, error) {
	switch e.Type {
	case "local":
		return &localBackend{dir: e.Dest, tag: e.Tag}, nil
	case "registry":
		if opt.Registry == nil {
			return nil, errors.New("no registry client")
		}
		repo, err := opt.Registry.RepositoryOf(e.Ref)
		if err != nil {
			return nil, err
		}
		return &registryBackend{reg: opt.Registry, ref: e.Ref, repoName: repo}, nil
	}
	return nil, fmt.Errorf("cache type %q is not supported", e.Type)
}

// collect builds the cache config of b: the records of every keyed
// vertex with a stored result (mode=max) or of those the final result is
// made of (mode=min), with their layers in e's compression.
func collect(ctx context.Context, e Export, b Build) (*builder, error) {
	var lineage map[string]bool
	if e.Mode != "max" {
		var err error
		if lineage, err = b.Worker.Lineage(b.Final); err != nil {
			return nil, err
		}
		for _, f := range b.Finals {
			more, err := b.Worker.Lineage(f)
			if err != nil {
				return nil, err
			}
			for id := range more {
				lineage[id] = true
			}
		}
	}
	lo := ops.LayerOptions{Compression: e.Compression, Level: e.Level}
	if err := lo.Validate(); err != nil {
		return nil, err
	}
	bl := newBuilder()
	for _, kv := range b.Keys {
		id, ok, err := b.KeyStore.Load(kv.Info.Key)
		if err != nil || !ok {
			continue
		}
		if lineage != nil && !lineage[id] {
			continue
		}
		chain, err := b.Worker.Chain(ctx, id)
		if err != nil {
			// A result pruned under us is not exported; the others are.
			continue
		}
		for i, l := range chain {
			if l.Layer == nil || (l.Base && !e.Force) {
				continue
			}
			c, err := b.Worker.ConvertLayer(ctx, *l.Layer, lo)
			if err != nil {
				return nil, fmt.Errorf("compressing layer %s (%s): %w", l.Layer.Digest, e.Compression, err)
			}
			chain[i].Layer = &c
		}
		info := kv.Info
		bl.add(kv.Info.Key, chain, &info)
	}
	return bl, nil
}
