package imagestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/exporter"
	"github.com/builderdev/builder/internal/digestutil"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// A multi-platform build is stored as its index: one entry of the store's
// index.json (per name) whose descriptor is an image index, listing one
// manifest per platform. It is one image for images, tag and rmi; inspect
// shows its platforms; run, FROM and push choose among them with the
// registry's platform matcher.

// describe reads the image (or index) d names: ID, size, creation time
// and, for an index, its platforms. What cannot be read makes the image
// Damaged (see Image.Damaged), with the manifest digest as ID when the
// manifest itself is unreadable.
func (s *Store) describe(d v1.Descriptor) Image {
	d.Annotations = nil
	if d.MediaType.IsIndex() {
		return s.describeIndex(d)
	}
	m, _, err := s.manifest(d.Digest)
	if err != nil {
		return Image{Manifest: d, ID: digestutil.FromHash(d.Digest), Damaged: err.Error()}
	}
	im := Image{Manifest: d, ID: digestutil.FromHash(m.Config.Digest), Size: m.Config.Size}
	for i, l := range m.Layers {
		im.Size += l.Size
		ld := digestutil.FromHash(l.Digest)
		n, err := s.blobs.Stat(ld)
		if errors.Is(err, cache.ErrNotFound) && s.blobs.Available(ld) {
			// Imported lazily from a remote cache: fetched when read.
			continue
		}
		if err != nil || n != l.Size {
			im.Damaged = fmt.Sprintf("layer %d (%s) is missing or damaged", i+1, l.Digest)
		}
	}
	cfg, err := s.config(m)
	if err != nil {
		im.Damaged = err.Error()
		return im
	}
	im.Created = cfg.Created.Time
	return im
}

// describeIndex is describe of a multi-platform image: damaged when any
// of its platforms is.
func (s *Store) describeIndex(d v1.Descriptor) Image {
	im := Image{Manifest: d, ID: digestutil.FromHash(d.Digest), Platforms: []Image{}}
	idx, _, err := readParsed(s, d.Digest, "index", v1.ParseIndexManifest)
	if err != nil {
		im.Damaged = err.Error()
		return im
	}
	seen := map[v1.Hash]bool{}
	for _, c := range idx.Manifests {
		if c.MediaType.IsIndex() {
			im.Damaged = fmt.Sprintf("image store: index %s: nested index %s", d.Digest, c.Digest)
			return im
		}
		ci := s.describe(c)
		ci.Platform = c.Platform
		if ci.Damaged != "" && im.Damaged == "" {
			im.Damaged = fmt.Sprintf("%s: %s", registry.PlatformOf(c.Platform), ci.Damaged)
		}
		if m, _, err := s.manifest(c.Digest); err == nil {
			for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
				if !seen[b.Digest] {
					seen[b.Digest] = true
					im.Size += b.Size
				}
			}
		}
		if ci.Created.After(im.Created) {
			im.Created = ci.Created
		}
		im.Platforms = append(im.Platforms, ci)
	}
	return im
}

// singleImage refuses an index where one image is needed.
func singleImage(im Image) error {
	if im.Platforms == nil {
		return nil
	}
	return fmt.Errorf("image %s is a multi-platform image (%s): choose a platform", im.ID, platformList(im))
}

func platformList(im Image) string {
	var ps []string
	for _, c := range im.Platforms {
		ps = append(ps, registry.PlatformOf(c.Platform).String())
	}
	return strings.Join(ps, ", ")
}

// PutIndex stores imgs, one per platform (their configs say which), as
// one multi-platform image under names, as Put stores one image: the
// manifests and configs go into the blob store, then the index (OCI, or
// a Docker manifest list with exporter.WithDockerMediaTypes).
func (s *Store) PutIndex(ctx context.Context, imgs []*exporter.Image, names []string, opt ...exporter.Option) (Image, error) {
	full, err := normalize(names)
	if err != nil {
		return Image{}, err
	}
	if len(imgs) == 0 {
		return Image{}, errors.New("storing image index: no image")
	}
	for _, img := range imgs {
		if _, err := s.putImage(ctx, img, opt...); err != nil {
			return Image{}, fmt.Errorf("%s: %w", registry.PlatformOf(exporter.PlatformOf(img)), err)
		}
	}
	vidx, err := exporter.IndexV1(imgs, opt...)
	if err != nil {
		return Image{}, err
	}
	raw, err := vidx.RawManifest()
	if err != nil {
		return Image{}, err
	}
	mt, err := vidx.MediaType()
	if err != nil {
		return Image{}, err
	}
	md, _, err := s.blobs.Put(ctx, bytes.NewReader(raw), "", int64(len(raw)))
	if err != nil {
		return Image{}, fmt.Errorf("storing image index: %w", err)
	}
	h, err := digestutil.ToHash(md)
	if err != nil {
		return Image{}, err
	}
	desc := v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(raw))}
	out := s.describe(desc)
	if out.Damaged != "" {
		return Image{}, fmt.Errorf("storing image index: %s", out.Damaged)
	}
	if err := s.update(func(idx *v1.IndexManifest) error {
		setNames(idx, desc, full)
		return nil
	}); err != nil {
		return Image{}, err
	}
	out.Names = full
	return out, nil
}

// Select returns the image of im for platform p: im itself when it is a
// single image, else the entry the registry's platform matcher picks (an
// unset p is the host's platform, else the only one).
func Select(im Image, p llb.Platform) (Image, error) {
	if im.Platforms == nil {
		return im, nil
	}
	if p.IsZero() && len(im.Platforms) == 1 {
		return im.Platforms[0], nil
	}
	descs := make([]v1.Descriptor, len(im.Platforms))
	for i, c := range im.Platforms {
		descs[i] = c.Manifest
		descs[i].Platform = c.Platform
	}
	d, err := registry.SelectManifest(descs, p)
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", im.ID, err)
	}
	for _, c := range im.Platforms {
		if c.Manifest.Digest == d.Digest {
			out := c
			out.Names = im.Names
			return out, nil
		}
	}
	return Image{}, fmt.Errorf("image %s: no image for platform %s", im.ID, p)
}

// LoadAll returns the images of im: one per platform for a multi-platform
// image, else im alone (as Load).
func (s *Store) LoadAll(im Image) ([]*exporter.Image, error) {
	if im.Platforms == nil {
		img, err := s.Load(im)
		if err != nil {
			return nil, err
		}
		return []*exporter.Image{img}, nil
	}
	out := make([]*exporter.Image, 0, len(im.Platforms))
	for _, c := range im.Platforms {
		img, err := s.Load(c)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", registry.PlatformOf(c.Platform), err)
		}
		out = append(out, img)
	}
	return out, nil
}

// RawIndex returns the raw index of a multi-platform image.
func (s *Store) RawIndex(im Image) ([]byte, error) {
	if im.Platforms == nil {
		return nil, fmt.Errorf("image %s is not a multi-platform image", im.ID)
	}
	return s.readBlob(im.Manifest.Digest)
}
