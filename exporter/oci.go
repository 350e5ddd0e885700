package exporter

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/digestutil"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// Annotation keys written into index.json, as BuildKit's oci exporter
// (through containerd's archive exporter) writes them.
const (
	// AnnotationImageName holds the full normalized name,
	// "docker.io/library/x:latest".
	AnnotationImageName = "io.containerd.image.name"
	// AnnotationRefName holds the tag, "latest".
	AnnotationRefName = "org.opencontainers.image.ref.name"
)

// tarEpoch is the modification time of every entry of an OCI tar.
var tarEpoch = time.Unix(0, 0).UTC()

// NormalizeName returns name the way Docker and BuildKit spell it in full:
// "x" -> "docker.io/library/x:latest", "localhost:5000/y" ->
// "localhost:5000/y:latest". Names with a digest, and names outside
// Docker's grammar (ValidateReference), are refused.
func NormalizeName(n string) (string, error) {
	if err := ValidateName(n); err != nil {
		return "", fmt.Errorf("image name %q: %w", n, err)
	}
	t, err := name.NewTag(n)
	if err != nil {
		return "", fmt.Errorf("image name %q: %w", n, err)
	}
	reg := t.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + t.RepositoryStr() + ":" + t.TagStr(), nil
}

type blobEntry struct {
	digest v1.Hash
	size   int64
	data   []byte // config and manifest
	layer  bool   // streamed from the store
}

// WriteOCI writes img as an OCI image layout tar stream to w: oci-layout,
// index.json with one manifest descriptor per name (annotated with the full
// name and its tag, like BuildKit; one plain descriptor when names is
// empty) and blobs/sha256/ with the config, the manifest and the layers.
// Layers are streamed from the blob store and checked against their
// digests. The stream is deterministic: sorted entries, fixed times. It
// returns the manifest's descriptor.
func WriteOCI(ctx context.Context, w io.Writer, img *Image, names []string, opt ...Option) (v1.Descriptor, error) {
	tw := &tarSink{tw: tar.NewWriter(w)}
	desc, err := writeLayout(ctx, tw, img, names, opt...)
	if err != nil {
		return desc, err
	}
	return desc, tw.tw.Close()
}

// WriteOCIDir writes img as an OCI image layout directory at dir (created
// if missing; an existing index.json is replaced): the same files WriteOCI
// puts in its tar. Blobs already in dir are kept.
func WriteOCIDir(ctx context.Context, dir string, img *Image, names []string, opt ...Option) (v1.Descriptor, error) {
	sink, err := newDirSink(dir)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return writeLayout(ctx, sink, img, names, opt...)
}

// built is an image in the form the writers need: its manifest, raw and
// parsed, its raw config and the manifest's descriptor.
type built struct {
	manifest    *v1.Manifest
	rawManifest []byte
	rawConfig   []byte
	desc        v1.Descriptor
}

// build makes img's manifest and config with opt.
func build(img *Image, opt ...Option) (*built, error) {
	vimg, err := img.V1(opt...)
	if err != nil {
		return nil, err
	}
	b := &built{}
	if b.rawManifest, err = vimg.RawManifest(); err != nil {
		return nil, err
	}
	if b.rawConfig, err = vimg.RawConfigFile(); err != nil {
		return nil, err
	}
	if b.manifest, err = vimg.Manifest(); err != nil {
		return nil, err
	}
	md, err := vimg.Digest()
	if err != nil {
		return nil, err
	}
	b.desc = v1.Descriptor{MediaType: b.manifest.MediaType, Size: int64(len(b.rawManifest)), Digest: md}
	return b, nil
}

func writeLayout(ctx context.Context, sink layoutSink, img *Image, names []string, opt ...Option) (v1.Descriptor, error) {
	descs, err := writeLayoutImages(ctx, sink, []NamedImage{{Image: img, Names: names}}, opt...)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return descs[0], nil
}

// writeLayoutImages writes an OCI layout of several images (their blobs
// from the first image's blob store, which they share): index.json lists
// each image under each of its names (once without a name when it has
// none).
func writeLayoutImages(ctx context.Context, sink layoutSink, imgs []NamedImage, opt ...Option) ([]v1.Descriptor, error) {
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	blobs := map[v1.Hash]blobEntry{}
	var descs []v1.Descriptor
	seen := map[string]bool{}
	for _, ni := range imgs {
		desc, err := addLayoutBlobs(blobs, ni, opt...)
		if err != nil {
			return nil, err
		}
		descs = append(descs, desc)
		if len(ni.Names) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, n := range ni.Names {
			full, err := NormalizeName(n)
			if err != nil {
				return nil, err
			}
			if seen[full] {
				continue
			}
			seen[full] = true
			d := desc
			d.Annotations = map[string]string{
				AnnotationImageName: full,
				AnnotationRefName:   full[strings.LastIndex(full, ":")+1:],
			}
			index.Manifests = append(index.Manifests, d)
		}
	}
	rawIndex, err := json.Marshal(index)
	if err != nil {
		return nil, err
	}
	sorted := make([]blobEntry, 0, len(blobs))
	for _, e := range blobs {
		if e.digest.Algorithm != "sha256" {
			return nil, fmt.Errorf("blob %s: only sha256 blobs are supported", e.digest)
		}
		sorted = append(sorted, e)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].digest.Hex < sorted[j].digest.Hex })

	if err := writeLayoutEntries(ctx, sink, imgs[0].first(), sorted, rawIndex); err != nil {
		return nil, err
	}
	return descs, nil
}

// addLayoutBlobs adds the blobs of ni to blobs (for a multi-platform
// image: each platform's, and the index) and returns the descriptor
// index.json names it by.
func addLayoutBlobs(blobs map[v1.Hash]blobEntry, ni NamedImage, opt ...Option) (v1.Descriptor, error) {
	one := func(img *Image) (v1.Descriptor, error) {
		b, err := build(img, opt...)
		if err != nil {
			return v1.Descriptor{}, err
		}
		m, md := b.manifest, b.desc.Digest
		blobs[md] = blobEntry{digest: md, size: int64(len(b.rawManifest)), data: b.rawManifest}
		blobs[m.Config.Digest] = blobEntry{digest: m.Config.Digest, size: int64(len(b.rawConfig)), data: b.rawConfig}
		for _, l := range m.Layers {
			blobs[l.Digest] = blobEntry{digest: l.Digest, size: l.Size, layer: true}
		}
		return b.desc, nil
	}
	if len(ni.Platforms) == 0 {
		return one(ni.Image)
	}
	for _, img := range ni.Platforms {
		if _, err := one(img); err != nil {
			return v1.Descriptor{}, err
		}
	}
	raw, desc, err := indexManifest(ni.Platforms, opt...)
	if err != nil {
		return v1.Descriptor{}, err
	}
	blobs[desc.Digest] = blobEntry{digest: desc.Digest, size: desc.Size, data: raw}
	return desc, nil
}

// sameBlobStore checks that every image of imgs (each platform's too)
// keeps its blobs in the first one's blob store.
func sameBlobStore(imgs []NamedImage) error {
	if len(imgs) == 0 {
		return errors.New("oci layout: no image")
	}
	want := imgs[0].first().Blobs
	for _, ni := range imgs {
		for _, img := range append([]*Image{ni.Image}, ni.Platforms...) {
			if img != nil && img.Blobs != want {
				return errors.New("oci layout: the images do not share a blob store")
			}
		}
	}
	return nil
}

// WriteOCIImages writes several images into one OCI image layout tar
// stream (see WriteOCI); they must share one blob store.
func WriteOCIImages(ctx context.Context, w io.Writer, imgs []NamedImage, opt ...Option) ([]v1.Descriptor, error) {
	if len(imgs) == 0 {
		return nil, errors.New("oci layout: no image")
	}
	if err := sameBlobStore(imgs); err != nil {
		return nil, err
	}
	tw := &tarSink{tw: tar.NewWriter(w)}
	descs, err := writeLayoutImages(ctx, tw, imgs, opt...)
	if err != nil {
		return descs, err
	}
	return descs, tw.tw.Close()
}

// copyBlob streams layer b from the store into tw, checking size and
// digest.
func copyBlob(ctx context.Context, tw io.Writer, img *Image, b blobEntry) error {
	d := digest.NewDigestFromEncoded(digest.SHA256, b.digest.Hex)
	f, err := img.Blobs.Open(d)
	if err != nil {
		return fmt.Errorf("layer %s: %w", d, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("layer %s: %w", d, err)
	}
	if fi.Size() != b.size {
		return fmt.Errorf("layer %s: stored blob has %d bytes, the image says %d", d, fi.Size(), b.size)
	}
	if img.Blobs.Stamped(d, fi) {
		// Hashed when it was stored and not rewritten since (the
		// layer this build just compressed, or one verified before).
		buf := make([]byte, min(b.size+1, 1<<20))
		if _, err := io.CopyBuffer(tw, cache.ContextReader(ctx, f), buf); err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		return nil
	}
	v := d.Verifier()
	// 1 MiB chunks, hashed while the next is copied.
	if _, err := digestutil.CopyHashing(tw, cache.ContextReader(ctx, f), v); err != nil {
		return fmt.Errorf("layer %s: %w", d, err)
	}
	if !v.Verified() {
		return fmt.Errorf("layer %s: stored blob does not match its digest", d)
	}
	return nil
}
