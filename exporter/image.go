package exporter

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/digestutil"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image is a built image: a config plus layers in the blob store.
type Image struct {
	// Config is the image config. The exporter sets RootFS (type layers,
	// diff_ids from Layers) itself and completes History so that it has one
	// non-empty entry per layer.
	Config v1.ConfigFile
	Layers []cache.Layer
	Blobs  *cache.BlobStore
	// HealthcheckStartInterval is written into the config's Healthcheck as
	// Docker's "StartInterval" (nanoseconds), which v1.HealthConfig lacks;
	// 0 or a config without Healthcheck writes nothing.
	HealthcheckStartInterval time.Duration
	// Extra are top-level fields added to the config JSON after the
	// standard ones, in order (e.g. an inline build cache); their names
	// must not be the config's own.
	Extra []ConfigField
}

// ConfigField is a top-level field of an image config JSON.
type ConfigField struct {
	Name  string
	Value json.RawMessage
}

// Option changes how an image is exported.
type Option func(*options)

type options struct {
	docker      bool
	annotations map[string]string
}

// WithDockerMediaTypes exports with Docker schema 2 media types instead of
// OCI ones (for registries and tools that do not know OCI).
func WithDockerMediaTypes() Option { return func(o *options) { o.docker = true } }

// WithAnnotations sets annotations on the image manifest (OCI media types
// only; Docker manifests have none).
func WithAnnotations(a map[string]string) Option {
	return func(o *options) { o.annotations = a }
}

// ConfigJSON returns the config the image is exported with: Config with
// RootFS set from the layers and History completed.
func (img *Image) ConfigJSON() ([]byte, error) {
	cfg := img.Config.DeepCopy()
	cfg.RootFS = v1.RootFS{Type: "layers", DiffIDs: make([]v1.Hash, 0, len(img.Layers))}
	for i, l := range img.Layers {
		h, err := digestutil.ToHash(l.DiffID)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): diff id: %w", i, l.Digest, err)
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, h)
	}
	nonEmpty := 0
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty > len(img.Layers) {
		return nil, fmt.Errorf("config history has %d entries with layers, the image has %d layers", nonEmpty, len(img.Layers))
	}
	// Like BuildKit, describe layers the history does not mention.
	for ; nonEmpty < len(img.Layers); nonEmpty++ {
		cfg.History = append(cfg.History, v1.History{Created: cfg.Created, CreatedBy: "builder: layer without history"})
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	if img.HealthcheckStartInterval != 0 && cfg.Config.Healthcheck != nil {
		if b, err = withStartInterval(b, cfg.Config.Healthcheck, img.HealthcheckStartInterval); err != nil {
			return nil, fmt.Errorf("image config: %w", err)
		}
	}
	for _, f := range img.Extra {
		name, err := json.Marshal(f.Name)
		if err != nil || !json.Valid(f.Value) || len(b) < 2 || b[len(b)-1] != '}' {
			return nil, fmt.Errorf("image config: field %q is not valid JSON", f.Name)
		}
		head := b[: len(b)-1 : len(b)-1]
		if len(head) > 1 {
			head = append(head, ',')
		}
		b = append(append(append(append(head, name...), ':'), f.Value...), '}')
	}
	return b, nil
}

// V1 returns the image as a go-containerregistry v1.Image (OCI media types
// unless WithDockerMediaTypes) whose layers read straight from the blob
// store.
func (img *Image) V1(opt ...Option) (v1.Image, error) {
	var o options
	for _, f := range opt {
		f(&o)
	}
	if img.Blobs == nil {
		return nil, errors.New("exporting image: no blob store")
	}
	cfg, err := img.ConfigJSON()
	if err != nil {
		return nil, err
	}
	mt, cfgMT := types.OCIManifestSchema1, types.OCIConfigJSON
	if o.docker {
		mt, cfgMT = types.DockerManifestSchema2, types.DockerConfigJSON
	}
	sum := sha256.Sum256(cfg)
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     mt,
		Config: v1.Descriptor{
			MediaType: cfgMT,
			Size:      int64(len(cfg)),
			Digest:    v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])},
		},
		Layers: make([]v1.Descriptor, 0, len(img.Layers)),
	}
	if !o.docker && len(o.annotations) > 0 {
		m.Annotations = o.annotations
	}
	layers := map[v1.Hash]cache.Layer{}
	for i, l := range img.Layers {
		lmt, err := layerMediaType(types.MediaType(l.MediaType), o.docker)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i, l.Digest, err)
		}
		l.MediaType = string(lmt)
		h, err := digestutil.ToHash(l.Digest)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		if l.Size <= 0 {
			return nil, fmt.Errorf("layer %d (%s): size %d", i, l.Digest, l.Size)
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: lmt, Size: l.Size, Digest: h})
		layers[h] = l
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("image manifest: %w", err)
	}
	core := &storeImage{blobs: img.Blobs, config: cfg, manifest: raw, mediaType: mt, layers: layers, configDigest: m.Config.Digest}
	return partial.CompressedToImage(core)
}

// layerMediaType maps a stored layer's media type to the OCI or Docker
// family.
func layerMediaType(mt types.MediaType, docker bool) (types.MediaType, error) {
	type pair struct{ oci, docker types.MediaType }
	families := []pair{
		{types.OCILayer, types.DockerLayer},
		{types.OCIUncompressedLayer, types.DockerUncompressedLayer},
		{types.OCILayerZStd, "application/vnd.docker.image.rootfs.diff.tar.zstd"},
		{types.OCIRestrictedLayer, types.DockerForeignLayer},
	}
	for _, p := range families {
		if mt == p.oci || mt == p.docker {
			if docker {
				return p.docker, nil
			}
			return p.oci, nil
		}
	}
	return "", fmt.Errorf("unsupported layer media type %q", mt)
}

// storeImage implements partial.CompressedImageCore over the blob store.
type storeImage struct {
	blobs        *cache.BlobStore
	config       []byte
	manifest     []byte
	mediaType    types.MediaType
	configDigest v1.Hash
	layers       map[v1.Hash]cache.Layer
}

func (s *storeImage) RawConfigFile() ([]byte, error)      { return s.config, nil }
func (s *storeImage) MediaType() (types.MediaType, error) { return s.mediaType, nil }
func (s *storeImage) RawManifest() ([]byte, error)        { return s.manifest, nil }
func (s *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == s.configDigest {
		return partial.ConfigLayer(s)
	}
	l, ok := s.layers[h]
	if !ok {
		return nil, fmt.Errorf("image has no layer %s", h)
	}
	return s.blobs.V1Layer(l), nil
}
