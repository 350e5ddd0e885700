package remotecache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/digestutil"
	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// backend is where a cache lives: a registry repository or an OCI layout
// directory.
type backend interface {
	// manifest returns the cache's manifest; a cache that does not exist
	// is an error wrapping cache.ErrNotFound.
	manifest(ctx context.Context) ([]byte, error)
	// readBlob returns a small blob (a config), at most max bytes.
	readBlob(ctx context.Context, d v1.Descriptor, max int64) ([]byte, error)
	// fetch copies blob d into blobs, verified.
	fetch(ctx context.Context, blobs *cache.BlobStore, d digest.Digest, size int64) error
	// pushBlob makes blob l (read from blobs when it has to be copied)
	// present; uploaded says whether its bytes were copied.
	pushBlob(ctx context.Context, blobs *cache.BlobStore, l cache.Layer) (uploaded bool, err error)
	// putManifest stores the manifest under the cache's name.
	putManifest(ctx context.Context, raw []byte, mt types.MediaType) error
	// sameAs says whether the cache's blobs are mountable from/present in
	// the backend's repository (registry backends only).
	repo() string
}

// registryBackend is a cache in a registry repository.
type registryBackend struct {
	reg *registry.Client
	ref string
	// repoName is the repository, known once the manifest was fetched.
	repoName string
}

func (b *registryBackend) manifest(ctx context.Context) ([]byte, error) {
	m, err := b.reg.FetchManifest(ctx, b.ref)
	if err != nil {
		return nil, err
	}
	b.repoName = m.Repo
	return m.Raw, nil
}

func (b *registryBackend) readBlob(ctx context.Context, d v1.Descriptor, max int64) ([]byte, error) {
	return b.reg.ReadBlob(ctx, b.repoName, digestutil.FromHash(d.Digest), d.Size, max)
}

func (b *registryBackend) fetch(ctx context.Context, _ *cache.BlobStore, d digest.Digest, size int64) error {
	return b.reg.FetchBlob(ctx, b.repoName, d, size)
}

func (b *registryBackend) pushBlob(ctx context.Context, blobs *cache.BlobStore, l cache.Layer) (bool, error) {
	return b.reg.PushBlob(ctx, b.repoName, blobs.V1Layer(l))
}

func (b *registryBackend) putManifest(ctx context.Context, raw []byte, mt types.MediaType) error {
	return b.reg.PutManifest(ctx, b.ref, raw, mt)
}

func (b *registryBackend) repo() string { return b.repoName }

// localBackend is a cache in an OCI layout directory, named by the
// org.opencontainers.image.ref.name annotation of its index.json entry.
type localBackend struct {
	dir    string
	tag    string
	digest string // import a manifest by digest instead of tag
}

const refNameAnnotation = "org.opencontainers.image.ref.name"

func (b *localBackend) blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	return filepath.Join(b.dir, "blobs", d.Algorithm().String(), d.Encoded()), nil
}

// readIndex reads index.json (at most 4 MiB).
func (b *localBackend) readIndex() (*v1.IndexManifest, error) {
	raw, err := readBounded(filepath.Join(b.dir, "index.json"), registry.MaxManifestSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no index.json: %w", b.dir, cache.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("%s/index.json: %w", b.dir, err)
	}
	return &idx, nil
}

func (b *localBackend) manifest(ctx context.Context) ([]byte, error) {
	idx, err := b.readIndex()
	if err != nil {
		return nil, err
	}
	for _, d := range idx.Manifests {
		if (b.digest != "" && d.Digest.String() == b.digest) || (b.digest == "" && d.Annotations[refNameAnnotation] == b.tag) {
			return b.readBlob(ctx, d, registry.MaxManifestSize)
		}
	}
	what := "tag " + b.tag
	if b.digest != "" {
		what = "digest " + b.digest
	}
	return nil, fmt.Errorf("%s: no cache with %s: %w", b.dir, what, cache.ErrNotFound)
}

func (b *localBackend) readBlob(_ context.Context, d v1.Descriptor, max int64) ([]byte, error) {
	if d.Size > max {
		return nil, fmt.Errorf("blob %s: %d bytes, more than %d", d.Digest, d.Size, max)
	}
	p, err := b.blobPath(digestutil.FromHash(d.Digest))
	if err != nil {
		return nil, err
	}
	raw, err := readBounded(p, max)
	if err != nil {
		return nil, err
	}
	if got := digest.FromBytes(raw); got.String() != d.Digest.String() {
		return nil, fmt.Errorf("blob %s: content has digest %s", d.Digest, got)
	}
	return raw, nil
}

func (b *localBackend) fetch(ctx context.Context, blobs *cache.BlobStore, d digest.Digest, size int64) error {
	p, err := b.blobPath(d)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, _, err = blobs.Put(ctx, f, d, size)
	return err
}

func (b *localBackend) pushBlob(ctx context.Context, blobs *cache.BlobStore, l cache.Layer) (bool, error) {
	p, err := b.blobPath(l.Digest)
	if err != nil {
		return false, err
	}
	if fi, err := os.Stat(p); err == nil && fi.Size() == l.Size {
		return false, nil
	}
	rc, err := blobs.V1Layer(l).Compressed()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return false, err
	}
	err = fsutil.WriteFileAtomicFunc(p, 0o644, func(w io.Writer) error {
		h := digest.Canonical.Digester()
		if _, err := io.Copy(io.MultiWriter(w, h.Hash()), cache.ContextReader(ctx, rc)); err != nil {
			return err
		}
		if h.Digest() != l.Digest {
			return fmt.Errorf("blob %s: content has digest %s", l.Digest, h.Digest())
		}
		return nil
	})
	return err == nil, err
}

func (b *localBackend) putManifest(_ context.Context, raw []byte, mt types.MediaType) error {
	d := digest.FromBytes(raw)
	p, _ := b.blobPath(d)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(p, 0o644, raw); err != nil {
		return err
	}
	layoutFile := filepath.Join(b.dir, "oci-layout")
	if _, err := os.Stat(layoutFile); err != nil {
		if err := fsutil.WriteFileAtomic(layoutFile, 0o644, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
			return err
		}
	}
	idx, err := b.readIndex()
	if errors.Is(err, cache.ErrNotFound) {
		idx, err = &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
	}
	if err != nil {
		return err
	}
	kept := idx.Manifests[:0]
	for _, m := range idx.Manifests {
		if m.Annotations[refNameAnnotation] != b.tag {
			kept = append(kept, m)
		}
	}
	idx.Manifests = append(kept, v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: digestutil.HashOf(d),
		Annotations: map[string]string{refNameAnnotation: b.tag}})
	out, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(b.dir, "index.json"), 0o644, out)
}

func (b *localBackend) repo() string { return "" }

// readBounded reads file p, failing past max bytes.
func readBounded(p string, max int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > max {
		return nil, fmt.Errorf("%s: more than %d bytes", p, max)
	}
	return bytes.Clone(raw), nil
}
