package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/digestutil"
	"github.com/builderdev/builder/internal/fsutil"
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
	writeState(c.tagFile(tag), d.String())
}

// writeState writes content to the state file p unless it holds it
// already. It is best effort: state only spares the network later.
func writeState(p, content string) {
	if old, err := os.ReadFile(p); err == nil && string(old) == content {
		return
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	fsutil.WriteFileAtomic(p, 0o600, []byte(content))
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

// storedManifest returns manifest d from the blob store only (an error
// wrapping cache.ErrNotFound when it is not there).
func (c *Client) storedManifest(d digest.Digest) ([]byte, error) {
	n, err := c.blobs.Stat(d)
	if err != nil {
		return nil, err
	}
	if n > MaxManifestSize {
		return nil, fmt.Errorf("manifest %s: %d bytes: %w (limit %d)", d, n, ErrManifestTooLarge, MaxManifestSize)
	}
	b, err := os.ReadFile(c.blobs.Path(d))
	if err != nil {
		return nil, err
	}
	if digest.FromBytes(b) != d {
		// Damaged: absent, fetched again.
		c.blobs.Delete(d)
		return nil, fmt.Errorf("stored manifest %s is corrupt: %w", d, cache.ErrNotFound)
	}
	return b, nil
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

// manifestBlobs lists the digests of m's config and layers.
func manifestBlobs(m *v1.Manifest) []digest.Digest {
	blobs := []digest.Digest{digestutil.FromHash(m.Config.Digest)}
	for _, l := range m.Layers {
		blobs = append(blobs, digestutil.FromHash(l.Digest))
	}
	return blobs
}

// source returns a repository known to hold blob d.
func (c *Client) source(d digest.Digest) (name.Repository, bool) {
	c.srcMu.Lock()
	defer c.srcMu.Unlock()
	r, ok := c.sources[d]
	return r, ok
}
