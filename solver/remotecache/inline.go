package remotecache

import (
	"context"
	"encoding/json"
	"fmt"

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
