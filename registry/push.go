package registry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/builderdev/builder/internal/digestutil"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"
)

// PushOptions configure one Push.
type PushOptions struct {
	// Progress, when set, is called with the bytes done and the bytes to
	// do of the reference being pushed (blobs found in the registry or
	// mounted count as done). Calls come from one goroutine per reference.
	Progress func(ref string, done, total int64)
	// Blobs, when set, is called once per image pushed with how many of
	// its blobs (layers and config) were uploaded and how many the
	// registry already had or mounted from another repository (their
	// bytes were not read: a lazily imported layer is never downloaded
	// for that).
	Blobs func(ref string, uploaded, reused int)
}

// Push uploads img to every reference of refs (tags; a reference without
// one gets latest) and returns the manifest digest.
//
// Per reference, the blobs (layers and config) go first, Options.Jobs at a
// time: each is skipped when the registry has it (HEAD), mounted from
// another repository of the same registry known to hold it (one the image's
// base was resolved from, or a reference pushed before), or streamed from
// its source with retries and exponential backoff on 408/429/5xx and broken
// connections. The manifest goes last, so a registry never names an image
// whose blobs are missing; a push that was interrupted and is run again
// uploads only what is missing.
func (c *Client) Push(ctx context.Context, img v1.Image, refs []string, o PushOptions) (digest.Digest, error) {
	if c.err != nil {
		return "", c.err
	}
	if len(refs) == 0 {
		return "", errors.New("push: no reference to push to")
	}
	h, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("push: image digest: %w", err)
	}
	d := digestutil.FromHash(h)
	tags, err := c.pushTags(refs, d)
	if err != nil {
		return "", err
	}
	blobs, err := imageBlobs(img)
	if err != nil {
		return "", fmt.Errorf("push: %w", err)
	}
	for _, t := range tags {
		if err := c.pushOne(ctx, img, t, o); err != nil {
			return "", fmt.Errorf("pushing %s: %w", t.Name(), simplify(err))
		}
		c.recordBlobSources(t.Repository, blobs)
	}
	return d, nil
}

// pushTags parses refs into the tags a push of the manifest digest d
// writes, each once.
func (c *Client) pushTags(refs []string, d digest.Digest) ([]name.Tag, error) {
	tags := make([]name.Tag, 0, len(refs))
	seen := map[string]bool{}
	for _, s := range refs {
		r, err := c.parse(s)
		if err != nil {
			return nil, fmt.Errorf("pushing %s: %w", s, err)
		}
		if r.tag == "" {
			return nil, fmt.Errorf("pushing %s: a push needs a tag, not a digest", s)
		}
		if r.digest != "" && r.digest != d {
			return nil, fmt.Errorf("pushing %s: the image's digest is %s", s, d)
		}
		t := r.repo.Tag(r.tag)
		if !seen[t.Name()] {
			seen[t.Name()] = true
			tags = append(tags, t)
		}
	}
	return tags, nil
}

// PushIndex is Push for a multi-platform image: every image of idx is
// pushed as Push pushes one (blobs first, mounted where known), then the
// index itself, under each reference of refs. It returns the index digest.
func (c *Client) PushIndex(ctx context.Context, idx v1.ImageIndex, refs []string, o PushOptions) (digest.Digest, error) {
	if c.err != nil {
		return "", c.err
	}
	if len(refs) == 0 {
		return "", errors.New("push: no reference to push to")
	}
	h, err := idx.Digest()
	if err != nil {
		return "", fmt.Errorf("push: index digest: %w", err)
	}
	d := digestutil.FromHash(h)
	tags, err := c.pushTags(refs, d)
	if err != nil {
		return "", err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return "", fmt.Errorf("push: index: %w", err)
	}
	for _, t := range tags {
		for _, m := range im.Manifests {
			img, err := idx.Image(m.Digest)
			if err != nil {
				return "", fmt.Errorf("push: index entry %s: %w", m.Digest, err)
			}
			blobs, err := imageBlobs(img)
			if err != nil {
				return "", fmt.Errorf("push: %w", err)
			}
			mi := &mountImage{Image: img, c: c, dst: t.Repository}
			if err := c.pushManifest(ctx, mi, t.Repository.Digest(m.Digest.String()), t.Name(), o); err != nil {
				return "", fmt.Errorf("pushing %s (%s): %w", t.Name(), PlatformOf(m.Platform), simplify(err))
			}
			if o.Blobs != nil {
				up, reused := mi.counts()
				o.Blobs(t.Name(), up, reused)
			}
			c.recordBlobSources(t.Repository, blobs)
		}
		if err := c.pushManifest(ctx, idx, t, t.Name(), o); err != nil {
			return "", fmt.Errorf("pushing %s: %w", t.Name(), simplify(err))
		}
	}
	return d, nil
}

// pushManifest writes x (an image with its blobs, or an index whose
// images are there) to ref, reporting progress under name.
func (c *Client) pushManifest(ctx context.Context, x remote.Taggable, ref name.Reference, display string, o PushOptions) error {
	updates := make(chan v1.Update, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range updates {
			if u.Error == nil && o.Progress != nil {
				o.Progress(display, u.Complete, u.Total)
			}
		}
	}()
	opts := append(append([]remote.Option(nil), c.remote...), remote.WithContext(ctx), remote.WithProgress(updates),
		remote.WithRetryPredicate(pushPredicate()))
	var err error
	switch v := x.(type) {
	case v1.Image:
		err = remote.Write(ref, v, opts...)
	case v1.ImageIndex:
		err = remote.WriteIndex(ref, v, opts...)
	default:
		close(updates)
		err = fmt.Errorf("cannot push %T", x)
	}
	<-done
	return err
}

func (c *Client) pushOne(ctx context.Context, img v1.Image, t name.Tag, o PushOptions) error {
	mi := &mountImage{Image: img, c: c, dst: t.Repository}
	if err := c.pushManifest(ctx, mi, t, t.Name(), o); err != nil {
		return err
	}
	if o.Blobs != nil {
		up, reused := mi.counts()
		o.Blobs(t.Name(), up, reused)
	}
	return nil
}

// imageBlobs lists the digests of img's config and layers.
func imageBlobs(img v1.Image) ([]digest.Digest, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return manifestBlobs(m), nil
}

// mountImage is an image whose layers are mountable from a repository of
// the destination's registry known to hold them. It notes which blobs'
// bytes were read (uploaded).
type mountImage struct {
	v1.Image
	c   *Client
	dst name.Repository

	mu    sync.Mutex
	blobs map[digest.Digest]*readCounter
}

// counts says how many blobs were uploaded and how many reused.
func (m *mountImage) counts() (uploaded, reused int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rc := range m.blobs {
		if rc.wasRead() {
			uploaded++
		} else {
			reused++
		}
	}
	return uploaded, reused
}

func (m *mountImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = m.wrap(l)
	}
	return out, nil
}

func (m *mountImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := m.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return m.wrap(l), nil
}

// ConfigLayer makes the config blob mountable too.
func (m *mountImage) ConfigLayer() (v1.Layer, error) {
	l, err := partial.ConfigLayer(m.Image)
	if err != nil {
		return nil, err
	}
	return m.wrap(l), nil
}

func (m *mountImage) wrap(l v1.Layer) v1.Layer {
	h, err := l.Digest()
	if err != nil {
		return l
	}
	d := digestutil.FromHash(h)
	m.mu.Lock()
	if m.blobs == nil {
		m.blobs = map[digest.Digest]*readCounter{}
	}
	rc, ok := m.blobs[d]
	if !ok {
		rc = &readCounter{l: l}
		m.blobs[d] = rc
	}
	m.mu.Unlock()
	src, ok := m.c.source(d)
	if !ok {
		src, ok = m.c.storedSource(d)
	}
	if !ok || src.RegistryStr() != m.dst.RegistryStr() || src.RepositoryStr() == m.dst.RepositoryStr() {
		return rc
	}
	return &remote.MountableLayer{Layer: rc, Reference: src.Digest(d.String())}
}

// recordBlobSources remembers that repo holds blobs, in memory and, with
// a state directory, on disk for later processes.
func (c *Client) recordBlobSources(repo name.Repository, blobs []digest.Digest) {
	c.srcMu.Lock()
	for _, d := range blobs {
		c.sources[d] = repo
	}
	c.srcMu.Unlock()
	if c.stateDir == "" {
		return
	}
	for _, d := range blobs {
		if d.Validate() == nil {
			writeState(filepath.Join(c.stateDir, "sources", d.Encoded()), repo.Name())
		}
	}
}

// storedSource returns the repository recorded on disk for blob d.
func (c *Client) storedSource(d digest.Digest) (name.Repository, bool) {
	if c.stateDir == "" || d.Validate() != nil {
		return name.Repository{}, false
	}
	b, err := os.ReadFile(filepath.Join(c.stateDir, "sources", d.Encoded()))
	if err != nil {
		return name.Repository{}, false
	}
	s := strings.TrimSpace(string(b))
	repo, err := name.NewRepository(s)
	if err != nil {
		return name.Repository{}, false
	}
	if c.allowHTTP(repo.RegistryStr()) {
		if repo, err = name.NewRepository(s, name.Insecure); err != nil {
			return name.Repository{}, false
		}
	}
	return repo, true
}
