package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/digestutil"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// This file serves artifacts other than images, such as the build cache of
// package cache/remotecache: a manifest (image manifest or index) of blobs
// that the caller interprets, pushed and fetched as they are.

// ErrNotFound is returned (wrapped) for a reference the registry does not
// know (404, MANIFEST_UNKNOWN, NAME_UNKNOWN). It is cache.ErrNotFound.
var ErrNotFound = cache.ErrNotFound

// Manifest is a manifest fetched as it is.
type Manifest struct {
	Raw       []byte
	MediaType types.MediaType
	Digest    digest.Digest
	// Repo is the repository it came from ("host/path"), where its blobs
	// are (see FetchBlob).
	Repo string
}

// FetchManifest fetches the manifest or index s names (a tag or a
// digest), at most MaxManifestSize bytes, without interpreting it. A
// reference the registry does not know is an error wrapping ErrNotFound.
func (c *Client) FetchManifest(ctx context.Context, s string) (*Manifest, error) {
	if c.err != nil {
		return nil, c.err
	}
	r, err := c.parse(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	got, err := c.puller.Get(ctx, r.fetchRef())
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("%s: %w", s, ErrNotFound)
		}
		return nil, fmt.Errorf("%s: %w", s, simplify(err))
	}
	if len(got.Manifest) > MaxManifestSize {
		return nil, fmt.Errorf("%s: manifest of %d bytes: %w", s, len(got.Manifest), ErrManifestTooLarge)
	}
	return &Manifest{Raw: got.Manifest, MediaType: got.MediaType, Digest: digestutil.FromHash(got.Digest), Repo: r.repo.Name()}, nil
}

// isNotFound says whether err is the registry's "no such manifest/repo".
func isNotFound(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	if terr.StatusCode == http.StatusNotFound {
		return true
	}
	for _, e := range terr.Errors {
		switch e.Code {
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode:
			return true
		}
	}
	return false
}

// FetchBlob makes sure blob d (size bytes; negative = unknown) of
// repository repo is in the blob store, downloading and verifying it when
// it is not.
func (c *Client) FetchBlob(ctx context.Context, repo string, d digest.Digest, size int64) error {
	if c.err != nil {
		return c.err
	}
	r, err := c.repository(repo)
	if err != nil {
		return err
	}
	if err := c.ensureBlob(ctx, r, d, size); err != nil {
		return fmt.Errorf("blob %s of %s: %w", d, repo, err)
	}
	return nil
}

// ReadBlob returns blob d of repo, at most max bytes; it is kept in the
// blob store.
func (c *Client) ReadBlob(ctx context.Context, repo string, d digest.Digest, size, max int64) ([]byte, error) {
	if size > max {
		return nil, fmt.Errorf("blob %s of %s: %d bytes, more than %d", d, repo, size, max)
	}
	if err := c.FetchBlob(ctx, repo, d, size); err != nil {
		return nil, err
	}
	f, err := c.blobs.Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("blob %s of %s: more than %d bytes", d, repo, max)
	}
	return b, nil
}

// repository parses a repository name, over plain HTTP where allowed.
func (c *Client) repository(s string) (name.Repository, error) {
	r, err := name.NewRepository(s)
	if err != nil {
		return r, fmt.Errorf("repository %q: %w", s, err)
	}
	if c.allowHTTP(r.RegistryStr()) {
		return name.NewRepository(s, name.Insecure)
	}
	return r, nil
}

// AddBlobSources records that repo holds blobs, for cross-repository
// mounts when they are pushed to another repository of the same registry
// and for BlobSource (kept under the state directory when there is one).
func (c *Client) AddBlobSources(repo string, blobs []digest.Digest) error {
	r, err := c.repository(repo)
	if err != nil {
		return err
	}
	c.recordBlobSources(r, blobs)
	return nil
}

// BlobSource returns a repository known to hold blob d.
func (c *Client) BlobSource(d digest.Digest) (string, bool) {
	if r, ok := c.source(d); ok {
		return r.Name(), true
	}
	if r, ok := c.storedSource(d); ok {
		return r.Name(), true
	}
	return "", false
}

// CanFetch implements cache.Fetcher: a blob can be fetched when a
// repository holding it is known.
func (c *Client) CanFetch(d digest.Digest) bool {
	_, ok := c.BlobSource(d)
	return ok
}

// Fetch implements cache.Fetcher: it downloads blob d from a repository
// known to hold it.
func (c *Client) Fetch(ctx context.Context, d digest.Digest) error {
	repo, ok := c.BlobSource(d)
	if !ok {
		return fmt.Errorf("blob %s: no repository is known to hold it: %w", d, ErrNotFound)
	}
	return c.FetchBlob(ctx, repo, d, -1)
}

// PushBlob uploads blob l to repository repo unless the registry has it,
// mounting it from another repository of the same registry known to hold
// it. uploaded says whether its bytes were sent (false: the registry had it
// or mounted it).
func (c *Client) PushBlob(ctx context.Context, repo string, l v1.Layer) (uploaded bool, err error) {
	if c.err != nil {
		return false, c.err
	}
	dst, err := c.repository(repo)
	if err != nil {
		return false, err
	}
	h, err := l.Digest()
	if err != nil {
		return false, err
	}
	d := digestutil.FromHash(h)
	opts := append(append([]remote.Option(nil), c.remote...), remote.WithContext(ctx), remote.WithRetryPredicate(pushPredicate()))
	counted := &readCounter{l: l}
	var up v1.Layer = counted
	src, ok := c.source(d)
	if !ok {
		src, ok = c.storedSource(d)
	}
	if ok && src.RegistryStr() == dst.RegistryStr() && src.RepositoryStr() != dst.RepositoryStr() {
		up = &remote.MountableLayer{Layer: counted, Reference: src.Digest(d.String())}
	}
	if err := remote.WriteLayer(dst, up, opts...); err != nil {
		return false, fmt.Errorf("pushing blob %s to %s: %w", d, repo, simplify(err))
	}
	c.recordBlobSources(dst, []digest.Digest{d})
	return counted.wasRead(), nil
}

// readCounter notes whether a layer's bytes were read (uploaded rather
// than mounted or found present).
type readCounter struct {
	l    v1.Layer
	mu   sync.Mutex
	read bool
}

func (r *readCounter) noteRead() {
	r.mu.Lock()
	r.read = true
	r.mu.Unlock()
}

func (r *readCounter) wasRead() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.read
}

func (r *readCounter) Digest() (v1.Hash, error)            { return r.l.Digest() }
func (r *readCounter) DiffID() (v1.Hash, error)            { return r.l.DiffID() }
func (r *readCounter) Size() (int64, error)                { return r.l.Size() }
func (r *readCounter) MediaType() (types.MediaType, error) { return r.l.MediaType() }
func (r *readCounter) Uncompressed() (io.ReadCloser, error) {
	r.noteRead()
	return r.l.Uncompressed()
}
func (r *readCounter) Compressed() (io.ReadCloser, error) {
	r.noteRead()
	return r.l.Compressed()
}

// PutManifest uploads manifest raw (of media type mt) under reference s
// (a tag); its blobs must be in the repository already (see PushBlob).
func (c *Client) PutManifest(ctx context.Context, s string, raw []byte, mt types.MediaType) error {
	if c.err != nil {
		return c.err
	}
	r, err := c.parse(s)
	if err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	if r.tag == "" {
		return fmt.Errorf("%s: a cache reference needs a tag, not a digest", s)
	}
	opts := append(append([]remote.Option(nil), c.remote...), remote.WithContext(ctx), remote.WithRetryPredicate(pushPredicate()))
	if err := remote.Put(r.repo.Tag(r.tag), rawManifest{raw: raw, mt: mt}, opts...); err != nil {
		return fmt.Errorf("pushing manifest to %s: %w", s, simplify(err))
	}
	return nil
}

// rawManifest is a remote.Taggable of given bytes.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }
func (m rawManifest) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(m.raw))
	return h, err
}

// RepositoryOf returns the repository of reference s ("host/path").
func (c *Client) RepositoryOf(s string) (string, error) {
	r, err := c.parse(s)
	if err != nil {
		return "", fmt.Errorf("%s: %w", s, err)
	}
	return r.repo.Name(), nil
}
