package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/registry"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
	"github.com/builderdev/builder/solver/remotecache"
	digest "github.com/opencontainers/go-digest"
	"github.com/spf13/pflag"
)

// cacheFlags are --cache-to and --cache-from (buildx syntax).
type cacheFlags struct {
	to, from []string
}

func (f *cacheFlags) add(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.to, "cache-to", nil, `Cache export destinations (e.g., "type=registry,ref=reg/app:cache,mode=max", "type=local,dest=dir", "type=inline")`)
	fs.StringArrayVar(&f.from, "cache-from", nil, `External cache sources (e.g., "type=registry,ref=reg/app:cache", "type=local,src=dir", or an image built with --cache-to type=inline)`)
}

// parse checks the values before anything is built.
func (f cacheFlags) parse() ([]remotecache.Export, []remotecache.Import, error) {
	var exps []remotecache.Export
	var imps []remotecache.Import
	for _, s := range f.to {
		e, err := remotecache.ParseExport(s)
		if err != nil {
			return nil, nil, err
		}
		exps = append(exps, e)
	}
	for _, s := range f.from {
		i, err := remotecache.ParseImport(s)
		if err != nil {
			return nil, nil, err
		}
		imps = append(imps, i)
	}
	return exps, imps, nil
}

// remoteCache is the remote cache of one build.
type remoteCache struct {
	exports []remotecache.Export
	index   *remotecache.Index
	opt     remotecache.Options
}

// openRemoteCache imports the --cache-from caches (nothing is downloaded
// but their manifests and configs) and makes the blob store fetch lazily
// imported layers when something reads them.
func openRemoteCache(ctx context.Context, r solver.Reporter, warn func(string), f cacheFlags, reg *registry.Client, blobs *cache.BlobStore) (*remoteCache, error) {
	exps, imps, err := f.parse()
	if err != nil {
		return nil, err
	}
	rc := &remoteCache{exports: exps, opt: remotecache.Options{Registry: reg, Blobs: blobs, Warn: warn}}
	if len(imps) > 0 {
		names := ""
		for i, imp := range imps {
			if i > 0 {
				names += ", "
			}
			names += imp.String()
		}
		step(r, "importing cache manifest from "+names, func() error {
			rc.index = remotecache.Load(ctx, imps, rc.opt)
			return nil
		})
		blobs.SetFetcher(rc.index)
	} else {
		// Images stored lazily by an earlier build can still be read.
		blobs.SetFetcher(reg)
	}
	return rc, nil
}

// keyStore is the solver's key store: local, then the imported caches.
// It also makes the cache mounts a RUN creates start from the imported
// caches' content (cache-mounts=true).
func (rc *remoteCache) keyStore(local *cache.Store, w *ops.Worker) solver.KeyStore {
	if rc.index == nil {
		return local
	}
	w.SetCacheMountRestorer(rc.index)
	return rc.index.KeyStore(local, w)
}

// export writes every --cache-to and reports what the build took from
// the imported caches.
func (rc *remoteCache) export(ctx context.Context, r solver.Reporter, b remotecache.Build) error {
	if rc.index != nil {
		hits, n, bytes := rc.index.Stats()
		line := fmt.Sprintf("%d of %d imported results used; downloaded %d blobs (%s); the rest stay in the registry (mounted on push, fetched when read)\n",
			hits, rc.index.Records(), n, humanBytes(bytes))
		restored := rc.index.Restored()
		for _, id := range sortedKeys(restored) {
			line += fmt.Sprintf("cache mount %s restored (%s)\n", id, humanBytes(restored[id]))
		}
		logStep(r, "[internal] remote cache", line)
	}
	for _, e := range rc.exports {
		if e.Type == "inline" {
			continue // written with the image
		}
		err := stepLog(r, "exporting cache to "+e.String(), func(logf func(string, ...any)) error {
			rep, err := remotecache.Write(ctx, e, b, rc.opt)
			if err != nil {
				return err
			}
			if rep.Unchanged {
				for _, m := range rep.Mounts {
					logf("cache mount %s: %s\n", m.ID, humanBytes(m.Size))
				}
				logf("%d records, %d layers: unchanged, nothing written\n", rep.Records, rep.Layers)
				return nil
			}
			for _, m := range rep.Mounts {
				logf("cache mount %s: %s\n", m.ID, humanBytes(m.Size))
			}
			logf("%d records, %d layers: %d blobs (%s) uploaded, the others present or mounted\n", rep.Records, rep.Layers, rep.Uploaded, humanBytes(rep.UploadedBytes))
			return nil
		})
		if err != nil {
			if !e.IgnoreError {
				return fmt.Errorf("exporting cache to %s: %w", e, err)
			}
			rc.opt.Warn(fmt.Sprintf("exporting cache to %s failed (ignore-error=true): %v", e, err))
		}
	}
	return nil
}

// stepLog is step with a log writer for the step.
func stepLog(r solver.Reporter, name string, fn func(logf func(string, ...any)) error) error {
	d := digest.FromString(name + time.Now().String())
	st := solver.Status{Digest: d, Name: name, Started: time.Now()}
	r.Status(st)
	err := fn(func(format string, a ...any) {
		r.Log(solver.Log{Digest: d, Stream: 1, Data: fmt.Appendf(nil, format, a...), Timestamp: time.Now()})
	})
	st.Completed = time.Now()
	st.Err = err
	r.Status(st)
	return err
}

// logStep reports a finished step with one log line.
func logStep(r solver.Reporter, name, line string) {
	stepLog(r, name, func(logf func(string, ...any)) error {
		logf("%s", line)
		return nil
	})
}

func sortedKeys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// inline returns the inline cache maker of the build when --cache-to
// type=inline was asked for, else nil.
func (rc *remoteCache) inline(b remotecache.Build) func(ctx context.Context, layers []cache.Layer) (json.RawMessage, error) {
	for _, e := range rc.exports {
		if e.Type == "inline" {
			return func(ctx context.Context, layers []cache.Layer) (json.RawMessage, error) {
				return remotecache.Inline(ctx, b, layers)
			}
		}
	}
	return nil
}
