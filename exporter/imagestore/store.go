package imagestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/exporter"
	"github.com/builderdev/builder/internal/digestutil"
	"github.com/builderdev/builder/internal/fsutil"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// ErrNotFound is returned (wrapped) for a name or ID the store does not
// have.
var ErrNotFound = errors.New("no such image")

// ErrConflict is returned (wrapped) by Remove for an image that a
// container uses or, by ID, that several names reference (as `docker rmi`).
var ErrConflict = errors.New("conflict")

// Store is the local image store. It is safe for concurrent use by
// goroutines and processes.
type Store struct {
	dir   string
	blobs *cache.BlobStore
}

// Image is one stored image.
type Image struct {
	// Names are its full names ("docker.io/library/x:latest"), sorted;
	// empty for an image stored by ID only.
	Names []string
	// Manifest is the manifest's descriptor (no annotations).
	Manifest v1.Descriptor
	// ID is the config digest, as Docker names image IDs.
	ID digest.Digest
	// Created is the config's creation time.
	Created time.Time
	// Size is the size of the config and the layers as stored
	// (compressed); of every platform's for a multi-platform image.
	Size int64
	// Platform is the platform of an image of a multi-platform image (an
	// entry of Platforms); nil otherwise.
	Platform *v1.Platform
	// Platforms are the images of a multi-platform image (Manifest is
	// then an index and ID its digest, as Docker's containerd store names
	// such an image), in index order; nil for a single image.
	Platforms []Image
	// Damaged says why the image cannot be used ("" when it can): a
	// blob of it (of any of its platforms) is missing or corrupt. A
	// damaged image is listed (with the manifest digest as ID when the
	// manifest itself is damaged), never blocks other images, is not
	// found by Get, and prune removes it (RemoveDamaged).
	Damaged string
}

// Open opens (creating) the image store in dir, keeping blobs in blobs.
func Open(dir string, blobs *cache.BlobStore) (*Store, error) {
	if blobs == nil {
		return nil, errors.New("image store: no blob store")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("image store %s: %w", dir, err)
	}
	return &Store{dir: dir, blobs: blobs}, nil
}

// Blobs is the blob store the images live in.
func (s *Store) Blobs() *cache.BlobStore { return s.blobs }

// lock takes the store's flock (exclusive or shared) and returns the
// unlock function.
func (s *Store) lock(exclusive bool) (func(), error) {
	unlock, err := fsutil.Lock(filepath.Join(s.dir, "lock"), exclusive, false)
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	return unlock, nil
}

func (s *Store) indexPath() string { return filepath.Join(s.dir, "index.json") }

// readIndex reads index.json (an empty index when there is none).
func (s *Store) readIndex() (*v1.IndexManifest, error) {
	raw, err := os.ReadFile(s.indexPath())
	if errors.Is(err, os.ErrNotExist) {
		return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		// Damaged (it is only ever replaced whole): its names are lost,
		// and the store goes on without them rather than failing every
		// build and command.
		return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
	}
	return idx, nil
}

// readIndexShared is readIndex under the shared lock, for readers.
func (s *Store) readIndexShared() (*v1.IndexManifest, error) {
	unlock, err := s.lock(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.readIndex()
}

// writeIndex replaces index.json atomically.
func (s *Store) writeIndex(idx *v1.IndexManifest) error {
	sort.SliceStable(idx.Manifests, func(i, j int) bool {
		a, b := idx.Manifests[i].Annotations[exporter.AnnotationImageName], idx.Manifests[j].Annotations[exporter.AnnotationImageName]
		if a != b {
			return a < b
		}
		return idx.Manifests[i].Digest.String() < idx.Manifests[j].Digest.String()
	})
	raw, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(s.indexPath(), 0o600, raw); err != nil {
		return fmt.Errorf("image store: writing index: %w", err)
	}
	return nil
}

// update runs fn on the index under the exclusive lock and writes the
// result.
func (s *Store) update(fn func(idx *v1.IndexManifest) error) error {
	unlock, err := s.lock(true)
	if err != nil {
		return err
	}
	defer unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := fn(idx); err != nil {
		return err
	}
	return s.writeIndex(idx)
}

func nameOf(d v1.Descriptor) string { return d.Annotations[exporter.AnnotationImageName] }

func named(desc v1.Descriptor, full string) v1.Descriptor {
	desc.Annotations = map[string]string{
		exporter.AnnotationImageName: full,
		exporter.AnnotationRefName:   full[strings.LastIndex(full, ":")+1:],
	}
	return desc
}

// setNames points each of names at desc. An image that loses its last
// name stays in the store without one (a dangling image, as in Docker).
func setNames(idx *v1.IndexManifest, desc v1.Descriptor, names []string) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []v1.Descriptor
	moved := map[v1.Hash]bool{}
	for _, d := range idx.Manifests {
		n := nameOf(d)
		if n == "" && d.Digest == desc.Digest {
			continue // re-added below: named or not
		}
		if want[n] {
			if d.Digest != desc.Digest {
				moved[d.Digest] = true
			}
			continue
		}
		out = append(out, d)
	}
	for n := range want {
		out = append(out, named(desc, n))
	}
	if len(names) == 0 && !hasDigest(out, desc.Digest) {
		desc.Annotations = nil
		out = append(out, desc)
	}
	for h := range moved {
		if !hasDigest(out, h) {
			for _, d := range idx.Manifests {
				if d.Digest == h {
					d.Annotations = nil
					out = append(out, d)
					break
				}
			}
		}
	}
	idx.Manifests = out
}

func hasDigest(ds []v1.Descriptor, h v1.Hash) bool {
	for _, d := range ds {
		if d.Digest == h {
			return true
		}
	}
	return false
}

// normalize normalizes every name.
func normalize(names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		full, err := exporter.NormalizeName(n)
		if err != nil {
			return nil, err
		}
		out = append(out, full)
	}
	return out, nil
}

// Put stores img (its manifest and config go into the blob store; its
// layers must be there) under names, which move to it from any image that
// had them. Without names the image is stored by ID only. opt chooses the
// media types (OCI unless exporter.WithDockerMediaTypes). It returns the
// stored image.
func (s *Store) Put(ctx context.Context, img *exporter.Image, names []string, opt ...exporter.Option) (Image, error) {
	full, err := normalize(names)
	if err != nil {
		return Image{}, err
	}
	out, err := s.putImage(ctx, img, opt...)
	if err != nil {
		return Image{}, err
	}
	if err := s.update(func(idx *v1.IndexManifest) error {
		setNames(idx, out.Manifest, full)
		return nil
	}); err != nil {
		return Image{}, err
	}
	out.Names = append([]string(nil), full...)
	sort.Strings(out.Names)
	return out, nil
}

// putImage writes img's manifest and config into the blob store (its
// layers must be there) and returns it as an unnamed Image.
func (s *Store) putImage(ctx context.Context, img *exporter.Image, opt ...exporter.Option) (Image, error) {
	v, err := img.V1(opt...)
	if err != nil {
		return Image{}, err
	}
	rawManifest, err := v.RawManifest()
	if err != nil {
		return Image{}, err
	}
	rawConfig, err := v.RawConfigFile()
	if err != nil {
		return Image{}, err
	}
	mt, err := v.MediaType()
	if err != nil {
		return Image{}, err
	}
	if err := s.checkLayers(img.Layers); err != nil {
		return Image{}, fmt.Errorf("storing image: %w", err)
	}
	cd, _, err := s.blobs.Put(ctx, bytes.NewReader(rawConfig), "", int64(len(rawConfig)))
	if err != nil {
		return Image{}, fmt.Errorf("storing image config: %w", err)
	}
	md, _, err := s.blobs.Put(ctx, bytes.NewReader(rawManifest), "", int64(len(rawManifest)))
	if err != nil {
		return Image{}, fmt.Errorf("storing image manifest: %w", err)
	}
	h, err := digestutil.ToHash(md)
	if err != nil {
		return Image{}, err
	}
	desc := v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(rawManifest))}
	out := Image{Manifest: desc, ID: cd, Created: img.Config.Created.Time, Size: int64(len(rawConfig))}
	for _, l := range img.Layers {
		out.Size += l.Size
	}
	return out, nil
}

// checkLayers returns an error naming the first of layers that the blob
// store does not hold whole. A layer the blob store can fetch (one
// imported lazily from a remote cache) is accepted: it is downloaded when
// something reads it.
func (s *Store) checkLayers(layers []cache.Layer) error {
	for i, l := range layers {
		n, err := s.blobs.Stat(l.Digest)
		if errors.Is(err, cache.ErrNotFound) && s.blobs.Available(l.Digest) {
			continue
		}
		if err != nil {
			return fmt.Errorf("layer %d (%s) is not in the blob store: %w", i, l.Digest, err)
		}
		if n != l.Size {
			return fmt.Errorf("layer %d (%s): the blob store holds %d bytes, the image says %d", i, l.Digest, n, l.Size)
		}
	}
	return nil
}

// List returns every stored image, newest first (then by first name).
func (s *Store) List() ([]Image, error) {
	idx, err := s.readIndexShared()
	if err != nil {
		return nil, err
	}
	out, err := s.listFrom(idx)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return strings.Join(out[i].Names, ",") < strings.Join(out[j].Names, ",")
	})
	return out, nil
}

func (s *Store) readBlob(h v1.Hash) ([]byte, error) {
	d, err := digest.Parse(h.String())
	if err != nil {
		return nil, err
	}
	f, err := s.blobs.Open(d)
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(f); err != nil {
		return nil, err
	}
	if digest.FromBytes(b.Bytes()) != d {
		return nil, fmt.Errorf("image store: blob %s is corrupt", d)
	}
	return b.Bytes(), nil
}

func (s *Store) manifest(h v1.Hash) (*v1.Manifest, []byte, error) {
	return readParsed(s, h, "manifest", v1.ParseManifest)
}

func (s *Store) config(m *v1.Manifest) (*v1.ConfigFile, error) {
	cfg, _, err := s.rawConfig(m.Config.Digest)
	return cfg, err
}

// configByID reads the config of the image with ID id (its config digest).
func (s *Store) configByID(id digest.Digest) (*v1.ConfigFile, error) {
	h, err := digestutil.ToHash(id)
	if err != nil {
		return nil, fmt.Errorf("image store: image ID %s: %w", id, err)
	}
	cfg, _, err := s.rawConfig(h)
	return cfg, err
}

// rawConfig reads and parses config blob h.
func (s *Store) rawConfig(h v1.Hash) (*v1.ConfigFile, []byte, error) {
	return readParsed(s, h, "config", v1.ParseConfigFile)
}

// readParsed reads blob h and parses it with parse (v1.ParseManifest,
// v1.ParseConfigFile, ...), returning the value and the raw blob; kind
// names the blob in a parse error.
func readParsed[T any](s *Store, h v1.Hash, kind string, parse func(io.Reader) (T, error)) (T, []byte, error) {
	var zero T
	raw, err := s.readBlob(h)
	if err != nil {
		return zero, nil, err
	}
	v, err := parse(bytes.NewReader(raw))
	if err != nil {
		return zero, nil, fmt.Errorf("image store: %s %s: %w", kind, h, err)
	}
	return v, raw, nil
}

// Get finds an image by name ("app", "app:1", "docker.io/library/app:1"),
// by ID ("sha256:<hex>", the hex, or an unambiguous prefix of at least 4
// hex digits, as docker accepts), or by manifest digest ("sha256:<hex>" or
// "name@sha256:<hex>").
func (s *Store) Get(ref string) (Image, error) {
	all, err := s.List()
	if err != nil {
		return Image{}, err
	}
	im, err := find(all, ref)
	if err != nil {
		return Image{}, err
	}
	if im.Damaged != "" {
		return Image{}, fmt.Errorf("%s: the stored image is damaged (%s; build or pull it again): %w", ref, im.Damaged, ErrNotFound)
	}
	return *im, nil
}

// RemoveDamaged removes the damaged images (see Image.Damaged) from the
// store and returns them.
func (s *Store) RemoveDamaged() ([]Image, error) {
	var gone []Image
	err := s.update(func(idx *v1.IndexManifest) error {
		all, err := s.listFrom(idx)
		if err != nil {
			return err
		}
		bad := map[v1.Hash]bool{}
		for _, im := range all {
			if im.Damaged == "" && im.ID != digestutil.FromHash(im.Manifest.Digest) {
				if _, err := s.configByID(im.ID); err != nil {
					im.Damaged = err.Error()
				}
			}
			if im.Damaged != "" {
				bad[im.Manifest.Digest] = true
				gone = append(gone, im)
			}
		}
		var keep []v1.Descriptor
		for _, d := range idx.Manifests {
			if !bad[d.Digest] {
				keep = append(keep, d)
			}
		}
		idx.Manifests = keep
		return nil
	})
	return gone, err
}

func find(all []Image, ref string) (*Image, error) {
	if _, dg, ok := strings.Cut(ref, "@"); ok {
		for i := range all {
			if all[i].Manifest.Digest.String() == dg {
				return &all[i], nil
			}
			for j := range all[i].Platforms {
				if all[i].Platforms[j].Manifest.Digest.String() == dg {
					return &all[i].Platforms[j], nil
				}
			}
		}
		return nil, fmt.Errorf("%s: %w", ref, ErrNotFound)
	}
	if full, err := exporter.NormalizeName(ref); err == nil {
		for i := range all {
			for _, n := range all[i].Names {
				if n == full {
					return &all[i], nil
				}
			}
		}
	}
	hex := strings.TrimPrefix(ref, "sha256:")
	if len(hex) >= 4 && strings.Trim(hex, "0123456789abcdef") == "" {
		var hit *Image
		for i := range all {
			if strings.HasPrefix(all[i].ID.Encoded(), hex) || all[i].Manifest.Digest.Hex == hex {
				if hit != nil && hit.ID != all[i].ID {
					return nil, fmt.Errorf("%s: ambiguous image ID prefix", ref)
				}
				hit = &all[i]
			}
		}
		if hit != nil {
			return hit, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", ref, ErrNotFound)
}

// Load returns a stored image as an exporter.Image, for saving and
// pushing, and its raw config.
func (s *Store) Load(im Image) (*exporter.Image, error) {
	if err := singleImage(im); err != nil {
		return nil, err
	}
	m, _, err := s.manifest(im.Manifest.Digest)
	if err != nil {
		return nil, err
	}
	cfg, err := s.config(m)
	if err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image %s: config has %d diff_ids for %d layers", im.ID, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	out := &exporter.Image{Config: *cfg, Blobs: s.blobs}
	for i, l := range m.Layers {
		out.Layers = append(out.Layers, cache.Layer{
			MediaType: string(l.MediaType),
			Digest:    digestutil.FromHash(l.Digest),
			Size:      l.Size,
			DiffID:    digestutil.FromHash(cfg.RootFS.DiffIDs[i]),
		})
	}
	return out, nil
}

// Raw returns the raw manifest and config of a stored image.
func (s *Store) Raw(im Image) (manifest, config []byte, err error) {
	if err := singleImage(im); err != nil {
		return nil, nil, err
	}
	m, rawManifest, err := s.manifest(im.Manifest.Digest)
	if err != nil {
		return nil, nil, err
	}
	rawConfig, err := s.readBlob(m.Config.Digest)
	if err != nil {
		return nil, nil, err
	}
	return rawManifest, rawConfig, nil
}

// Tag adds the name dst to the image src names (docker tag). Both must
// be references in Docker's grammar (src may also be an image ID).
func (s *Store) Tag(src, dst string) error {
	if err := exporter.ValidateReference(src); err != nil {
		return fmt.Errorf("source image %q: %w", src, err)
	}
	full, err := exporter.NormalizeName(dst)
	if err != nil {
		return fmt.Errorf("target image: %w", err)
	}
	return s.update(func(idx *v1.IndexManifest) error {
		all, err := s.listFrom(idx)
		if err != nil {
			return err
		}
		im, err := find(all, src)
		if err != nil {
			return err
		}
		names := append(append([]string(nil), im.Names...), full)
		setNames(idx, im.Manifest, names)
		return nil
	})
}

// listFrom groups the descriptors of idx (read under the lock) into
// images with their sorted names, ID, size and creation time.
func (s *Store) listFrom(idx *v1.IndexManifest) ([]Image, error) {
	var out []Image
	pos := map[v1.Hash]int{}
	for _, d := range idx.Manifests {
		i, ok := pos[d.Digest]
		if !ok {
			out = append(out, s.describe(d))
			i = len(out) - 1
			pos[d.Digest] = i
		}
		if n := nameOf(d); n != "" {
			out[i].Names = append(out[i].Names, n)
		}
	}
	for i := range out {
		sort.Strings(out[i].Names)
	}
	return out, nil
}

// Removed says what Remove did, in docker rmi's words.
type Removed struct {
	Untagged []string      // names removed
	Deleted  digest.Digest // the image ID, when the image left the store
}

// Container is a container of builder run, as Remove and Prune see it:
// which image it runs and whether it is running.
type Container struct {
	ID string
	// ImageID is the ID of the image it runs: for a multi-platform image,
	// the ID of the platform's image (its config digest).
	ImageID digest.Digest
	Running bool
}

// usedBy returns the first of ctrs that runs im (or, for a multi-platform
// image, one of its platforms' images), nil when none does; with
// running, only a running one.
func usedBy(im Image, ctrs []Container, running bool) *Container {
	for i, c := range ctrs {
		if running && !c.Running {
			continue
		}
		if c.ImageID == im.ID {
			return &ctrs[i]
		}
		for _, p := range im.Platforms {
			if c.ImageID == p.ID {
				return &ctrs[i]
			}
		}
	}
	return nil
}

// short is docker's truncated ID: the first 12 hex digits.
func short(id string) string {
	_, hex, ok := strings.Cut(id, ":")
	if !ok {
		hex = id
	}
	return hex[:min(12, len(hex))]
}

// Remove removes ref like docker rmi (with the containerd image store):
// a name is untagged, and the image goes when it was its last name, unless
// one of ctrs uses it: then rmi refuses, and with force untags and keeps
// the image (dangling) for the container. An ID removes the image with
// all its names; a running container's image cannot be removed, and force
// is needed when a stopped container uses it or several names reference
// it. Blobs stay in the blob store (the cache's GC removes those no image
// or cache record references).
func (s *Store) Remove(ref string, force bool, ctrs []Container) (Removed, error) {
	var res Removed
	err := s.update(func(idx *v1.IndexManifest) error {
		all, err := s.listFrom(idx)
		if err != nil {
			return err
		}
		im, err := find(all, ref)
		if err != nil {
			return err
		}
		byName := ""
		if full, err := exporter.NormalizeName(ref); err == nil {
			for _, n := range im.Names {
				if n == full {
					byName = full
				}
			}
		}
		id := short(im.ID.String())
		switch {
		case byName != "" && len(im.Names) == 1:
			if c := usedBy(*im, ctrs, false); c != nil && !force {
				return fmt.Errorf("%w: unable to delete %s (must be forced) - container %s is using its referenced image %s", ErrConflict, exporter.FamiliarName(byName), short(c.ID), id)
			}
		case byName == "":
			if c := usedBy(*im, ctrs, true); c != nil {
				return fmt.Errorf("%w: unable to delete %s (cannot be forced) - image is being used by running container %s", ErrConflict, id, short(c.ID))
			}
			if c := usedBy(*im, ctrs, false); c != nil && !force {
				return fmt.Errorf("%w: unable to delete %s (must be forced) - image is being used by stopped container %s", ErrConflict, id, short(c.ID))
			}
			if len(im.Names) > 1 && !force {
				return fmt.Errorf("%w: unable to delete %s (must be forced) - image is referenced in multiple repositories", ErrConflict, id)
			}
		}
		var out []v1.Descriptor
		for _, d := range idx.Manifests {
			if d.Digest != im.Manifest.Digest {
				out = append(out, d)
				continue
			}
			n := nameOf(d)
			if byName != "" && n != byName {
				out = append(out, d)
				continue
			}
			if n != "" {
				res.Untagged = append(res.Untagged, n)
			}
		}
		if !hasDigest(out, im.Manifest.Digest) && byName != "" && usedBy(*im, ctrs, false) != nil {
			// Forced off its last name: the image stays, dangling, for
			// the containers that use it.
			d := im.Manifest
			d.Annotations = nil
			out = append(out, d)
		}
		if !hasDigest(out, im.Manifest.Digest) {
			res.Deleted = im.ID
		}
		idx.Manifests = out
		return nil
	})
	return res, err
}

// Referenced returns every blob the stored images use (manifests, configs,
// layers), for the cache's garbage collector to keep.
func (s *Store) Referenced() (map[digest.Digest]bool, error) {
	idx, err := s.readIndexShared()
	if err != nil {
		return nil, err
	}
	keep := map[digest.Digest]bool{}
	for _, d := range idx.Manifests {
		md := digestutil.FromHash(d.Digest)
		if keep[md] {
			continue
		}
		keep[md] = true
		im := s.describe(d)
		for _, c := range append([]Image{im}, im.Platforms...) {
			if c.Platforms != nil {
				continue // the index: its manifest is kept above
			}
			keep[digestutil.FromHash(c.Manifest.Digest)] = true
			m, _, err := s.manifest(c.Manifest.Digest)
			if err != nil {
				continue // damaged: what it would name is unknown
			}
			keep[digestutil.FromHash(m.Config.Digest)] = true
			for _, l := range m.Layers {
				keep[digestutil.FromHash(l.Digest)] = true
			}
		}
	}
	return keep, nil
}

// Prune removes dangling images (stored by ID only), as docker image
// prune; with all, every image, whatever its names. Images that any of
// ctrs uses stay. It returns what it removed.
func (s *Store) Prune(all bool, ctrs []Container) ([]Removed, error) {
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	var out []Removed
	for _, im := range list {
		if usedBy(im, ctrs, false) != nil || (!all && len(im.Names) > 0) {
			continue
		}
		r, err := s.Remove(im.ID.String(), true, ctrs)
		if errors.Is(err, ErrNotFound) { // removed meanwhile
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}
