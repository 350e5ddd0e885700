package remotecache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/solver/ops"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// ConfigMediaType is the media type of the cache config blob.
const ConfigMediaType = "application/vnd.builder.cache.config.v1+json"

// Limits of what an import accepts: a cache is untrusted input.
const (
	maxConfigSize = 64 << 20
	maxRecords    = 200000
	maxChain      = 1000
)

// Config is the cache config blob: the layers (sorted by digest) and the
// records (sorted by key) that use them.
type Config struct {
	Version int      `json:"version"`
	Layers  []Blob   `json:"layers"`
	Records []Record `json:"records"`
	// Mounts are the exported cache mounts (cache-mounts=true), sorted
	// by id.
	Mounts []Mount `json:"mounts,omitempty"`
}

// Blob is a layer of the cache.
type Blob struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	DiffID    digest.Digest `json:"diffID"`
}

// Record is one cache key and the chain of layers of its result.
type Record struct {
	Key   digest.Digest `json:"key"`
	Chain []Link        `json:"chain"`
	// Info is what the key was computed from, so that a machine importing
	// the cache can explain its misses (names and digests only).
	Info *cache.KeyInfo `json:"info,omitempty"`
}

// Link is one layer of a record's chain.
type Link struct {
	// Layer indexes Config.Layers; absent for a step that changed nothing.
	Layer *int `json:"layer,omitempty"`
	// Base marks a layer of a base image.
	Base bool `json:"base,omitempty"`
	// Created is when the step's result was made (steps).
	Created *time.Time `json:"created,omitempty"`
}

// Mount is the content of one cache mount (RUN --mount=type=cache), as a
// layer whose tar holds the mount's files.
type Mount struct {
	ID    string `json:"id"`
	Layer int    `json:"layer"`
}

// builder collects records and layers into a Config.
type builder struct {
	layers  map[digest.Digest]cache.Layer
	records map[digest.Digest]recordIn
	mounts  map[string]cache.Layer
}

type recordIn struct {
	chain []ops.ChainLink
	info  *cache.KeyInfo
}

func newBuilder() *builder {
	return &builder{layers: map[digest.Digest]cache.Layer{}, records: map[digest.Digest]recordIn{}, mounts: map[string]cache.Layer{}}
}

func (b *builder) add(key digest.Digest, chain []ops.ChainLink, info *cache.KeyInfo) {
	for _, l := range chain {
		if l.Layer != nil {
			b.layers[l.Layer.Digest] = *l.Layer
		}
	}
	if info != nil {
		i := *info
		i.Key = ""
		info = &i
	}
	b.records[key] = recordIn{chain: chain, info: info}
}

func (b *builder) addMount(id string, l cache.Layer) {
	b.layers[l.Digest] = l
	b.mounts[id] = l
}

// config returns the Config and its layers in the order of Config.Layers.
func (b *builder) config() (*Config, []cache.Layer) {
	var layers []cache.Layer
	for _, l := range b.layers {
		layers = append(layers, l)
	}
	sort.Slice(layers, func(i, j int) bool { return layers[i].Digest < layers[j].Digest })
	idx := map[digest.Digest]int{}
	cfg := &Config{Version: 1, Layers: make([]Blob, len(layers)), Records: []Record{}}
	for i, l := range layers {
		idx[l.Digest] = i
		cfg.Layers[i] = Blob{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size, DiffID: l.DiffID}
	}
	for key, r := range b.records {
		rec := Record{Key: key, Info: r.info, Chain: make([]Link, len(r.chain))}
		for i, l := range r.chain {
			var link Link
			if l.Layer != nil {
				n := idx[l.Layer.Digest]
				link.Layer = &n
			}
			link.Base = l.Base
			if !l.Base && !l.Created.IsZero() {
				t := l.Created.UTC()
				link.Created = &t
			}
			rec.Chain[i] = link
		}
		cfg.Records = append(cfg.Records, rec)
	}
	sort.Slice(cfg.Records, func(i, j int) bool { return cfg.Records[i].Key < cfg.Records[j].Key })
	for id, l := range b.mounts {
		cfg.Mounts = append(cfg.Mounts, Mount{ID: id, Layer: idx[l.Digest]})
	}
	sort.Slice(cfg.Mounts, func(i, j int) bool { return cfg.Mounts[i].ID < cfg.Mounts[j].ID })
	return cfg, layers
}

// parseConfig decodes and checks a cache config: every index in range,
// every digest valid, every media type a layer's.
func parseConfig(raw []byte) (*Config, error) {
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("cache config: %w", err)
	}
	if cfg.Version != 1 {
		return nil, fmt.Errorf("cache config version %d: only version 1 is known", cfg.Version)
	}
	if len(cfg.Records) > maxRecords {
		return nil, fmt.Errorf("cache config: %d records, more than %d", len(cfg.Records), maxRecords)
	}
	for i, l := range cfg.Layers {
		if err := l.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("cache config: layer %d: %w", i, err)
		}
		if err := l.DiffID.Validate(); err != nil {
			return nil, fmt.Errorf("cache config: layer %d diff id: %w", i, err)
		}
		if !isLayerType(l.MediaType) || l.Size < 0 {
			return nil, fmt.Errorf("cache config: layer %d: media type %q is not a layer's", i, l.MediaType)
		}
	}
	for _, r := range cfg.Records {
		if err := r.Key.Validate(); err != nil {
			return nil, fmt.Errorf("cache config: record key: %w", err)
		}
		if len(r.Chain) == 0 || len(r.Chain) > maxChain {
			return nil, fmt.Errorf("cache config: record %s: chain of %d layers", r.Key, len(r.Chain))
		}
		for _, l := range r.Chain {
			if l.Layer != nil && (*l.Layer < 0 || *l.Layer >= len(cfg.Layers)) {
				return nil, fmt.Errorf("cache config: record %s: layer %d out of range", r.Key, *l.Layer)
			}
			if l.Layer == nil && l.Base {
				return nil, fmt.Errorf("cache config: record %s: base layer without blob", r.Key)
			}
		}
	}
	for _, m := range cfg.Mounts {
		if m.Layer < 0 || m.Layer >= len(cfg.Layers) || m.ID == "" {
			return nil, fmt.Errorf("cache config: cache mount %q: bad layer", m.ID)
		}
	}
	return &cfg, nil
}

// chain converts r's links back to the worker's.
func (cfg *Config) chain(r Record) []ops.ChainLink {
	out := make([]ops.ChainLink, len(r.Chain))
	for i, l := range r.Chain {
		var link ops.ChainLink
		if l.Layer != nil {
			b := cfg.Layers[*l.Layer]
			link.Layer = &cache.Layer{MediaType: b.MediaType, Digest: b.Digest, Size: b.Size, DiffID: b.DiffID}
		}
		link.Base = l.Base
		if l.Created != nil {
			link.Created = *l.Created
		}
		out[i] = link
	}
	return out
}

func isLayerType(mt string) bool {
	switch types.MediaType(mt) {
	case types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer, types.DockerLayer, types.DockerUncompressedLayer:
		return true
	}
	return mt == cache.DockerZstdLayer
}

// dockerType is the Docker media type of an OCI layer type.
func dockerType(mt string) string {
	switch types.MediaType(mt) {
	case types.OCILayer:
		return string(types.DockerLayer)
	case types.OCIUncompressedLayer:
		return string(types.DockerUncompressedLayer)
	case types.OCILayerZStd:
		return cache.DockerZstdLayer
	}
	return mt
}

// manifest builds the cache's manifest: an image manifest whose config is
// the cache config (image-manifest=true), or an index listing the layers
// and the config, as BuildKit's registry cache. Both forms have no
// annotations or times: the same cache gives the same bytes.
func manifest(e Export, cfgRaw []byte, layers []cache.Layer) ([]byte, types.MediaType, error) {
	cfgDesc := v1.Descriptor{MediaType: ConfigMediaType, Size: int64(len(cfgRaw)), Digest: hashOf(digest.FromBytes(cfgRaw))}
	descs := make([]v1.Descriptor, len(layers))
	for i, l := range layers {
		mt := l.MediaType
		if !e.OCIMediaTypes {
			mt = dockerType(mt)
		}
		descs[i] = v1.Descriptor{MediaType: types.MediaType(mt), Size: l.Size, Digest: hashOf(l.Digest)}
	}
	if e.ImageManifest {
		mt := types.OCIManifestSchema1
		if !e.OCIMediaTypes {
			mt = types.DockerManifestSchema2
		}
		m := v1.Manifest{SchemaVersion: 2, MediaType: mt, Config: cfgDesc, Layers: descs}
		if m.Layers == nil {
			m.Layers = []v1.Descriptor{}
		}
		b, err := json.Marshal(m)
		return b, mt, err
	}
	mt := types.OCIImageIndex
	if !e.OCIMediaTypes {
		mt = types.DockerManifestList
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: mt, Manifests: append(descs, cfgDesc)}
	b, err := json.Marshal(idx)
	return b, mt, err
}

// configDescriptor finds the cache config in a cache manifest of either
// form; a manifest that is not one of ours is an error wrapping
// errForeign.
func configDescriptor(raw []byte) (v1.Descriptor, error) {
	var probe struct {
		Config    *v1.Descriptor  `json:"config"`
		Manifests []v1.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return v1.Descriptor{}, fmt.Errorf("%w: %v", errForeign, err)
	}
	if probe.Config != nil {
		if probe.Config.MediaType == ConfigMediaType {
			return *probe.Config, nil
		}
		return *probe.Config, errImage
	}
	for _, d := range probe.Manifests {
		if d.MediaType == ConfigMediaType {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("%w: no %s in it", errForeign, ConfigMediaType)
}

var (
	errForeign = errors.New("not a builder cache")
	// errImage is returned for an image manifest: its config may hold
	// inline cache.
	errImage = errors.New("an image")
)

func hashOf(d digest.Digest) v1.Hash {
	return v1.Hash{Algorithm: d.Algorithm().String(), Hex: d.Encoded()}
}
