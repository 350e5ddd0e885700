package remotecache

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// InlineKey is the top-level field of an image config that holds an
// inline cache (--cache-to type=inline): a Config whose layers are the
// image's own.
const InlineKey = "builder.cache.v1"

// inlineConfig reads the inline cache from the image config desc.
func inlineConfig(ctx context.Context, b backend, desc v1.Descriptor) (*Config, error) {
	raw, err := b.readBlob(ctx, desc, registry.MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("image config %s: %w", desc.Digest, err)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("image config %s: %w", desc.Digest, err)
	}
	inline, ok := probe[InlineKey]
	if !ok {
		return nil, fmt.Errorf("%w: an image without inline cache (build it with --cache-to type=inline)", errForeign)
	}
	return parseConfig(inline)
}

// Inline returns the inline cache of b for an image whose layers are
// layers (--cache-to type=inline, always mode=min): the records of the
// results the image is made of, each pointing at the image's own layers,
// so that --cache-from IMAGE finds their blobs in the image's repository.
// Records whose layers are not the image's (timestamps rewritten, a COPY
// --link input made on scratch) are left out.
func Inline(ctx context.Context, b Build, layers []cache.Layer) (json.RawMessage, error) {
	lineage, err := b.Worker.Lineage(b.Final)
	if err != nil {
		return nil, err
	}
	bl := newBuilder()
	for _, kv := range b.Keys {
		id, ok, err := b.KeyStore.Load(kv.Info.Key)
		if err != nil || !ok || !lineage[id] {
			continue
		}
		chain, err := b.Worker.Chain(ctx, id)
		if err != nil || len(chain) > len(layers) {
			continue
		}
		same := true
		for i := range chain {
			if chain[i].Layer == nil || chain[i].Layer.DiffID != layers[i].DiffID {
				same = false
				break
			}
			l := layers[i]
			chain[i].Layer = &l
		}
		if same {
			info := kv.Info
			bl.add(kv.Info.Key, chain, &info)
		}
	}
	cfg, _ := bl.config()
	return json.Marshal(cfg)
}
