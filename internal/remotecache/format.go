package remotecache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/digestutil"
	"github.com/builderdev/builder/solver/ops"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
)

// ConfigMediaType is the media type of the cache config blob: a Config as
// JSON, gzip-compressed (deterministically: no name, no time).
const ConfigMediaType = "application/vnd.builder.cache.config.v1+json+gzip"

// EncodeConfig returns cfg as a config blob.
func EncodeConfig(cfg *Config) ([]byte, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeConfig decodes and checks a config blob, reading at most
// maxConfigSize bytes of JSON.
func DecodeConfig(blob []byte) (*Config, error) {
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		return nil, fmt.Errorf("cache config: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("cache config: %w", err)
	}
	if len(raw) > maxConfigSize {
		return nil, fmt.Errorf("cache config: more than %d bytes", maxConfigSize)
	}
	return parseConfig(raw)
}

// Limits of what an import accepts: a cache is untrusted input.
const (
	maxConfigSize = 64 << 20
	maxRecords    = 200000
	maxChain      = 1000
)

// Config is the cache config blob: the layers (sorted by digest), the
// results as a tree of layers (each a layer on a parent result, parents
// first) and the records (sorted by key) naming a result.
type Config struct {
	Version int      `json:"version"`
	Layers  []Blob   `json:"layers"`
	Results []Result `json:"results"`
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

// Result is a filesystem: its parent result's layers and then Layer.
type Result struct {
	// Parent indexes Config.Results (always an earlier entry); absent
	// for the first layer.
	Parent *int `json:"parent,omitempty"`
	// Layer indexes Config.Layers.
	Layer int `json:"layer"`
	// Base marks a layer of a base image.
	Base bool `json:"base,omitempty"`
	// Created is when the step's result was made (steps).
	Created *time.Time `json:"created,omitempty"`
}

// Record is one cache key and the result it names.
type Record struct {
	Key    digest.Digest `json:"key"`
	Result int           `json:"result"`
	// Info is what the key was computed from, so that a machine importing
	// the cache can explain its misses (names and digests only).
	Info *cache.KeyInfo `json:"info,omitempty"`
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

// resultKey identifies a result node for sharing.
type resultKey struct {
	parent  int
	layer   int
	base    bool
	created time.Time
}

// config returns the Config and its layers in the order of Config.Layers.
// Records are visited in key order and results numbered as first met, so
// the same records give the same bytes.
func (b *builder) config() (*Config, []cache.Layer) {
	var layers []cache.Layer
	for _, l := range b.layers {
		layers = append(layers, l)
	}
	sort.Slice(layers, func(i, j int) bool { return layers[i].Digest < layers[j].Digest })
	idx := map[digest.Digest]int{}
	cfg := &Config{Version: 1, Layers: make([]Blob, len(layers)), Results: []Result{}, Records: []Record{}}
	for i, l := range layers {
		idx[l.Digest] = i
		cfg.Layers[i] = Blob{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size, DiffID: l.DiffID}
	}
	keys := make([]digest.Digest, 0, len(b.records))
	for k := range b.records {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	nodes := map[resultKey]int{}
	for _, key := range keys {
		r := b.records[key]
		cur := -1
		for _, l := range r.chain {
			if l.Layer == nil {
				cur = -2 // not representable; dropped below
				break
			}
			rk := resultKey{parent: cur, layer: idx[l.Layer.Digest], base: l.Base}
			if !l.Base {
				rk.created = l.Created.UTC()
			}
			n, ok := nodes[rk]
			if !ok {
				res := Result{Layer: rk.layer, Base: rk.base}
				if cur >= 0 {
					p := cur
					res.Parent = &p
				}
				if !rk.created.IsZero() {
					t := rk.created
					res.Created = &t
				}
				n = len(cfg.Results)
				cfg.Results = append(cfg.Results, res)
				nodes[rk] = n
			}
			cur = n
		}
		if cur < 0 {
			continue
		}
		cfg.Records = append(cfg.Records, Record{Key: key, Result: cur, Info: r.info})
	}
	ids := make([]string, 0, len(b.mounts))
	for id := range b.mounts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		cfg.Mounts = append(cfg.Mounts, Mount{ID: id, Layer: idx[b.mounts[id].Digest]})
	}
	return cfg, layers
}

// parseConfig decodes and checks a cache config: every index in range,
// parents before children, every digest valid, every media type a layer's.
func parseConfig(raw []byte) (*Config, error) {
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("cache config: %w", err)
	}
	if cfg.Version != 1 {
		return nil, fmt.Errorf("cache config version %d: only version 1 is known", cfg.Version)
	}
	if len(cfg.Records) > maxRecords || len(cfg.Results) > maxRecords*maxChain {
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
	depth := make([]int, len(cfg.Results))
	for i, r := range cfg.Results {
		if r.Layer < 0 || r.Layer >= len(cfg.Layers) {
			return nil, fmt.Errorf("cache config: result %d: layer %d out of range", i, r.Layer)
		}
		depth[i] = 1
		if r.Parent != nil {
			if *r.Parent < 0 || *r.Parent >= i {
				return nil, fmt.Errorf("cache config: result %d: parent %d is not an earlier result", i, *r.Parent)
			}
			depth[i] = depth[*r.Parent] + 1
		}
		if depth[i] > maxChain {
			return nil, fmt.Errorf("cache config: result %d: more than %d layers", i, maxChain)
		}
	}
	for _, r := range cfg.Records {
		if err := r.Key.Validate(); err != nil {
			return nil, fmt.Errorf("cache config: record key: %w", err)
		}
		if r.Result < 0 || r.Result >= len(cfg.Results) {
			return nil, fmt.Errorf("cache config: record %s: result %d out of range", r.Key, r.Result)
		}
	}
	for _, m := range cfg.Mounts {
		if m.Layer < 0 || m.Layer >= len(cfg.Layers) || m.ID == "" {
			return nil, fmt.Errorf("cache config: cache mount %q: bad layer", m.ID)
		}
	}
	return &cfg, nil
}

// chain returns the layers of result n, base first, as the worker's links.
func (cfg *Config) chain(n int) []ops.ChainLink {
	var out []ops.ChainLink
	for i := n; ; {
		r := cfg.Results[i]
		b := cfg.Layers[r.Layer]
		link := ops.ChainLink{Layer: &cache.Layer{MediaType: b.MediaType, Digest: b.Digest, Size: b.Size, DiffID: b.DiffID}, Base: r.Base}
		if r.Created != nil {
			link.Created = *r.Created
		}
		out = append(out, link)
		if r.Parent == nil {
			break
		}
		i = *r.Parent
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
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
	cfgDesc := v1.Descriptor{MediaType: ConfigMediaType, Size: int64(len(cfgRaw)), Digest: digestutil.HashOf(digest.FromBytes(cfgRaw))}
	descs := make([]v1.Descriptor, len(layers))
	for i, l := range layers {
		mt := l.MediaType
		if !e.OCIMediaTypes {
			mt = dockerType(mt)
		}
		descs[i] = v1.Descriptor{MediaType: types.MediaType(mt), Size: l.Size, Digest: digestutil.HashOf(l.Digest)}
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
