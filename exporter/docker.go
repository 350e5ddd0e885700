package exporter

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// FamiliarName returns a normalized name the short way Docker prints it:
// "docker.io/library/x:1" -> "x:1", "docker.io/me/x:1" -> "me/x:1"; other
// registries keep their host.
func FamiliarName(full string) string {
	s := strings.TrimPrefix(full, "docker.io/")
	if s != full {
		s = strings.TrimPrefix(s, "library/")
	}
	return s
}

// WriteDocker writes img as a docker-archive tar stream to w, the format
// `docker save` writes and `docker load`, `podman load` and
// `skopeo copy docker-archive:` read: the config as <hex>.json, each layer
// as <hex>.tar[.gz|.zst], manifest.json (the go-containerregistry tarball
// package's manifest, with RepoTags in Docker's short form) and the legacy
// repositories file (repository -> tag -> config hex). Images are exported
// with Docker media types unless opt says otherwise (the archive itself
// carries no manifest). The stream is deterministic.
func WriteDocker(ctx context.Context, w io.Writer, img *Image, names []string, opt ...Option) (v1.Descriptor, error) {
	descs, err := WriteDockerImages(ctx, w, []NamedImage{{Image: img, Names: names}}, opt...)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return descs[0], nil
}

// NamedImage is an image and the names it is saved under.
type NamedImage struct {
	Image *Image
	Names []string
	// Platforms, when set, make a multi-platform image: one image per
	// platform, joined by an index (OCI layouts only; Image is unused).
	Platforms []*Image
}

// first is the image whose blob store holds ni's blobs.
func (ni NamedImage) first() *Image {
	if len(ni.Platforms) > 0 {
		return ni.Platforms[0]
	}
	return ni.Image
}

// WriteDockerImages writes several images into one docker archive, as
// `docker save A B` does: one manifest.json entry per image, each blob
// once. It returns the images' manifest descriptors.
func WriteDockerImages(ctx context.Context, w io.Writer, imgs []NamedImage, opt ...Option) ([]v1.Descriptor, error) {
	opt = append([]Option{WithDockerMediaTypes()}, opt...)
	sink := &tarSink{tw: tar.NewWriter(w)}
	var entries tarball.Manifest
	var descs []v1.Descriptor
	repos := map[string]map[string]string{}
	done := map[string]bool{}
	for _, ni := range imgs {
		if len(ni.Platforms) > 0 {
			return nil, fmt.Errorf("%s: a docker archive holds one platform of a multi-platform image (use an OCI layout)", strings.Join(ni.Names, ", "))
		}
		b, err := build(ni.Image, opt...)
		if err != nil {
			return nil, err
		}
		m, rawConfig := b.manifest, b.rawConfig
		d, err := dockerEntry(m, ni.Names, repos)
		if err != nil {
			return nil, err
		}
		entries = append(entries, d)
		descs = append(descs, b.desc)
		if !done[d.Config] {
			done[d.Config] = true
			if err := sink.file(d.Config, int64(len(rawConfig)), 0o644, bytesFill(rawConfig)); err != nil {
				return nil, err
			}
		}
		for i, l := range m.Layers {
			if done[d.Layers[i]] {
				continue
			}
			done[d.Layers[i]] = true
			be := blobEntry{digest: l.Digest, size: l.Size, layer: true}
			img := ni.Image
			if err := sink.file(d.Layers[i], l.Size, 0o644, func(w io.Writer) error { return copyBlob(ctx, w, img, be) }); err != nil {
				return nil, err
			}
		}
	}
	rawDockerManifest, err := json.Marshal(entries)
	if err != nil {
		return nil, err
	}
	if err := sink.file("manifest.json", int64(len(rawDockerManifest)), 0o644, bytesFill(rawDockerManifest)); err != nil {
		return nil, err
	}
	if len(repos) > 0 {
		raw, err := json.Marshal(repos)
		if err != nil {
			return nil, err
		}
		if err := sink.file("repositories", int64(len(raw)), 0o644, bytesFill(raw)); err != nil {
			return nil, err
		}
	}
	if err := sink.tw.Close(); err != nil {
		return nil, fmt.Errorf("writing docker archive: %w", err)
	}
	return descs, nil
}

// dockerEntry is the manifest.json entry of an image with manifest m
// saved under names; it adds the names to repos.
func dockerEntry(m *v1.Manifest, names []string, repos map[string]map[string]string) (tarball.Descriptor, error) {
	tags := []string{}
	seen := map[string]bool{}
	for _, n := range names {
		full, err := NormalizeName(n)
		if err != nil {
			return tarball.Descriptor{}, err
		}
		short := FamiliarName(full)
		if seen[short] {
			continue
		}
		seen[short] = true
		tags = append(tags, short)
		i := strings.LastIndex(short, ":")
		if repos[short[:i]] == nil {
			repos[short[:i]] = map[string]string{}
		}
		repos[short[:i]][short[i+1:]] = m.Config.Digest.Hex
	}
	d := tarball.Descriptor{Config: m.Config.Digest.Hex + ".json", RepoTags: tags}
	for _, l := range m.Layers {
		d.Layers = append(d.Layers, l.Digest.Hex+layerExt(l.MediaType))
	}
	return d, nil
}

// layerExt is the file extension tools expect for a layer's compression.
func layerExt(mt types.MediaType) string {
	switch mt {
	case types.OCILayerZStd, "application/vnd.docker.image.rootfs.diff.tar.zstd":
		return ".tar.zst"
	case types.OCIUncompressedLayer, types.DockerUncompressedLayer, types.OCIUncompressedRestrictedLayer:
		return ".tar"
	default:
		return ".tar.gz"
	}
}
