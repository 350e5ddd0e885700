package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/builderdev/builder/cache"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
)

// tagFile is where the last digest of tag is recorded.
func (c *Client) tagFile(tag name.Tag) string {
	sum := sha256.Sum256([]byte(tag.Name()))
	return filepath.Join(c.stateDir, "tags", hex.EncodeToString(sum[:]))
}

// recordTag remembers that tag resolved to d. Failing to record is not an
// error of the resolve: the record only helps offline builds.
func (c *Client) recordTag(tag name.Tag, d digest.Digest) {
	if c.stateDir == "" {
		return
	}
	p := c.tagFile(tag)
	if old, err := os.ReadFile(p); err == nil && string(old) == d.String() {
		return
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tag-")
	if err != nil {
		return
	}
	_, err = f.WriteString(d.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
	}
}

// lastTag returns the digest recorded for tag.
func (c *Client) lastTag(tag name.Tag) (digest.Digest, bool) {
	if c.stateDir == "" {
		return "", false
	}
	b, err := os.ReadFile(c.tagFile(tag))
	if err != nil {
		return "", false
	}
	d, err := digest.Parse(strings.TrimSpace(string(b)))
	return d, err == nil
}

// storedManifest returns manifest d from the blob store only.
func (c *Client) storedManifest(d digest.Digest) ([]byte, error) {
	n, err := c.blobs.Stat(d)
	if err != nil {
		return nil, err
	}
	if n > MaxManifestSize {
		return nil, ErrManifestTooLarge
	}
	return os.ReadFile(c.blobs.Path(d))
}

// unreachable reports whether err means the registry could not be reached
// at all (DNS, refused or reset connections, timeouts), as opposed to an
// answer such as "unauthorized" or "manifest unknown".
func unreachable(err error) bool {
	if errors.Is(err, ErrInsecure) || errors.Is(err, cache.ErrNotFound) {
		return false
	}
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	return errors.As(err, &oe) || errors.As(err, &de) || errors.As(err, &ne) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}

// recordSources remembers that repo holds the config and layers of m.
func (c *Client) recordSources(repo name.Repository, m *v1.Manifest) {
	blobs := []digest.Digest{digest.Digest(m.Config.Digest.String())}
	for _, l := range m.Layers {
		blobs = append(blobs, digest.Digest(l.Digest.String()))
	}
	c.recordBlobSources(repo, blobs)
}

// source returns a repository known to hold blob d.
func (c *Client) source(d digest.Digest) (name.Repository, bool) {
	c.srcMu.Lock()
	defer c.srcMu.Unlock()
	r, ok := c.sources[d]
	return r, ok
}
