package exporter

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// A multi-platform build exports one Image per platform, joined by an
// index (an OCI image index, or a Docker manifest list with Docker media
// types) whose descriptors carry each image's platform, taken from its
// config (os, os.version, architecture, variant).

// PlatformOf is the platform an image is described with in an index.
func PlatformOf(img *Image) *v1.Platform {
	return &v1.Platform{OS: img.Config.OS, Architecture: img.Config.Architecture, Variant: img.Config.Variant, OSVersion: img.Config.OSVersion}
}

// indexManifest returns the raw index of imgs (as IndexV1 serves it, so
// an OCI layout and a push name the same digest) and its descriptor.
func indexManifest(imgs []*Image, opt ...Option) ([]byte, v1.Descriptor, error) {
	idx, err := IndexV1(imgs, opt...)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	raw, _ := idx.RawManifest()
	mt, _ := idx.MediaType()
	h, _ := idx.Digest()
	return raw, v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: h}, nil
}

// IndexV1 returns imgs as one go-containerregistry index (for a push):
// each image as V1 with opt makes it, described by media type, digest,
// size and platform only, as BuildKit writes an index (go-containerregistry's
// mutate.AppendManifests would add an artifactType, which OCI reserves for
// artifacts).
func IndexV1(imgs []*Image, opt ...Option) (v1.ImageIndex, error) {
	o := options{}
	for _, f := range opt {
		f(&o)
	}
	x := &index{imgs: map[v1.Hash]v1.Image{}}
	x.manifest.SchemaVersion = 2
	x.manifest.MediaType = types.OCIImageIndex
	if o.docker {
		x.manifest.MediaType = types.DockerManifestList
	}
	for i, img := range imgs {
		vimg, err := img.V1(opt...)
		if err != nil {
			return nil, fmt.Errorf("image %d (%s): %w", i, PlatformOf(img), err)
		}
		mt, err := vimg.MediaType()
		if err != nil {
			return nil, err
		}
		h, err := vimg.Digest()
		if err != nil {
			return nil, err
		}
		size, err := vimg.Size()
		if err != nil {
			return nil, err
		}
		x.imgs[h] = vimg
		x.manifest.Manifests = append(x.manifest.Manifests, v1.Descriptor{MediaType: mt, Size: size, Digest: h, Platform: PlatformOf(img)})
	}
	raw, err := json.Marshal(x.manifest)
	if err != nil {
		return nil, err
	}
	x.raw = raw
	if x.digest, _, err = v1.SHA256(bytes.NewReader(raw)); err != nil {
		return nil, err
	}
	return x, nil
}

// index is the v1.ImageIndex IndexV1 returns: a raw index and its images.
type index struct {
	manifest v1.IndexManifest
	raw      []byte
	digest   v1.Hash
	imgs     map[v1.Hash]v1.Image
}

func (x *index) MediaType() (types.MediaType, error) { return x.manifest.MediaType, nil }
func (x *index) Digest() (v1.Hash, error)            { return x.digest, nil }
func (x *index) Size() (int64, error)                { return int64(len(x.raw)), nil }
func (x *index) RawManifest() ([]byte, error)        { return x.raw, nil }

func (x *index) IndexManifest() (*v1.IndexManifest, error) {
	m := x.manifest
	m.Manifests = append([]v1.Descriptor(nil), x.manifest.Manifests...)
	return &m, nil
}

func (x *index) Image(h v1.Hash) (v1.Image, error) {
	if img, ok := x.imgs[h]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("index %s has no image %s", x.digest, h)
}

func (x *index) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return nil, fmt.Errorf("index %s has no nested index %s", x.digest, h)
}

// writeIndexLayout writes the OCI layout of a multi-platform image:
// index.json names (under each of names, or once unnamed) the image index
// of imgs; blobs/ holds the index, each image's manifest and config, and
// the layers, streamed from the blob store the images share.
func writeIndexLayout(ctx context.Context, sink layoutSink, imgs []*Image, names []string, opt ...Option) (v1.Descriptor, error) {
	ni := []NamedImage{{Platforms: imgs, Names: names}}
	if err := sameBlobStore(ni); err != nil {
		return v1.Descriptor{}, err
	}
	descs, err := writeLayoutImages(ctx, sink, ni, opt...)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return descs[0], nil
}

// WriteOCIIndex writes imgs as an OCI image layout tar stream to w, as
// WriteOCI does one image: index.json points at an image index (named
// like WriteOCI's manifest) that lists one manifest per platform, as
// BuildKit's oci exporter writes a multi-platform build. It returns the
// index's descriptor.
func WriteOCIIndex(ctx context.Context, w io.Writer, imgs []*Image, names []string, opt ...Option) (v1.Descriptor, error) {
	tw := &tarSink{tw: tar.NewWriter(w)}
	desc, err := writeIndexLayout(ctx, tw, imgs, names, opt...)
	if err != nil {
		return desc, err
	}
	return desc, tw.tw.Close()
}

// WriteOCIIndexDir is WriteOCIIndex into an OCI layout directory, as
// WriteOCIDir.
func WriteOCIIndexDir(ctx context.Context, dir string, imgs []*Image, names []string, opt ...Option) (v1.Descriptor, error) {
	sink, err := newDirSink(dir)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return writeIndexLayout(ctx, sink, imgs, names, opt...)
}

// PlatformDir is the subdirectory buildx gives a platform's files in a
// multi-platform local or tar output: "linux_amd64", "linux_arm_v7",
// "windows(10.0.20348.1006)_amd64" (containerd's FormatAll).
func PlatformDir(img *Image) string {
	p := PlatformOf(img)
	s := p.OS
	if p.OSVersion != "" {
		s += "(" + p.OSVersion + ")"
	}
	s += "_" + p.Architecture
	if p.Variant != "" {
		s += "_" + p.Variant
	}
	return s
}

// WriteLocalIndex writes each image's root filesystem under
// dir/PlatformDir (type=local of a multi-platform build).
func WriteLocalIndex(ctx context.Context, dir string, imgs []*Image) error {
	for _, img := range imgs {
		if err := WriteLocal(ctx, filepath.Join(dir, PlatformDir(img)), img); err != nil {
			return err
		}
	}
	return nil
}

// WriteRootfsTarIndex writes one tar stream holding each image's root
// filesystem under PlatformDir/ (type=tar of a multi-platform build), made
// in a temporary directory under scratch.
func WriteRootfsTarIndex(ctx context.Context, w io.Writer, imgs []*Image, scratch string) error {
	tmp, err := os.MkdirTemp(scratch, ".rootfs-")
	if err != nil {
		return fmt.Errorf("tar output: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := WriteLocalIndex(ctx, tmp, imgs); err != nil {
		return err
	}
	return TarDir(ctx, w, tmp)
}
