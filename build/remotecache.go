package build

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
	"github.com/docker/go-units"
	digest "github.com/opencontainers/go-digest"
)

// remoteCache is the remote cache of one build.
type remoteCache struct {
	exports []remotecache.Export
	index   *remotecache.Index
	opt     remotecache.Options
}

// openRemoteCache imports the --cache-from caches (nothing is downloaded
// but their manifests and configs) and makes the blob store fetch lazily
// imported layers when something reads them.
func openRemoteCache(ctx context.Context, r solver.Reporter, warn func(string), exps []remotecache.Export, imps []remotecache.Import, reg *registry.Client, blobs *cache.BlobStore) *remoteCache {
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
	return rc
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
			hits, rc.index.Records(), n, humanSize(bytes))
		restored := rc.index.Restored()
		for _, id := range sortedKeys(restored) {
			line += fmt.Sprintf("cache mount %s restored (%s)\n", id, humanSize(restored[id]))
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
					logf("cache mount %s: %s\n", m.ID, humanSize(m.Size))
				}
				logf("%d records, %d layers: unchanged, nothing written\n", rep.Records, rep.Layers)
				return nil
			}
			for _, m := range rep.Mounts {
				logf("cache mount %s: %s\n", m.ID, humanSize(m.Size))
			}
			logf("%d records, %d layers: %d blobs (%s) uploaded, the others present or mounted\n", rep.Records, rep.Layers, rep.Uploaded, humanSize(rep.UploadedBytes))
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

// humanSize formats n bytes as docker does (go-units HumanSize).
func humanSize(n int64) string { return units.HumanSize(float64(n)) }

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
