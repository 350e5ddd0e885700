package imagestore

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/digestutil"
	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/llb"
	digest "github.com/opencontainers/go-digest"
)

// LayerSize is one layer of a stored image with its sizes.
type LayerSize struct {
	Digest digest.Digest
	// Size is the blob's size as stored (compressed); Unpacked the size
	// of its uncompressed tar.
	Size, Unpacked int64
}

// Layers returns the layers of im, bottom first, with their compressed
// and unpacked sizes. The unpacked size of a layer is measured once by
// decompressing it, then kept in the store's sizes/ directory.
func (s *Store) Layers(im Image) ([]LayerSize, error) {
	if err := singleImage(im); err != nil {
		return nil, err
	}
	m, _, err := s.manifest(im.Manifest.Digest)
	if err != nil {
		return nil, err
	}
	out := make([]LayerSize, 0, len(m.Layers))
	for _, l := range m.Layers {
		d := digestutil.FromHash(l.Digest)
		n, err := s.unpackedSize(cache.Layer{MediaType: string(l.MediaType), Digest: d, Size: l.Size})
		if err != nil {
			return nil, err
		}
		out = append(out, LayerSize{Digest: d, Size: l.Size, Unpacked: n})
	}
	return out, nil
}

// UnpackedSize is what docker images and docker image inspect show as an
// image's size: its layers uncompressed. A multi-platform image has the
// size of the host platform's image (the one builder run picks), as
// docker's containerd image store shows; without one, of all its
// platforms' images together, as docker falls back to.
func (s *Store) UnpackedSize(im Image) (int64, error) {
	if im.Platforms != nil {
		if c, err := Select(im, llb.Platform{}); err == nil {
			return s.UnpackedSize(c)
		}
		var n int64
		for _, c := range im.Platforms {
			m, err := s.UnpackedSize(c)
			if err != nil {
				return 0, err
			}
			n += m
		}
		return n, nil
	}
	ls, err := s.Layers(im)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, l := range ls {
		n += l.Unpacked
	}
	return n, nil
}

func (s *Store) unpackedSize(l cache.Layer) (int64, error) {
	p := filepath.Join(s.dir, "sizes", l.Digest.Encoded())
	if b, err := os.ReadFile(p); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n >= 0 {
			return n, nil
		}
	}
	rc, err := s.blobs.V1Layer(l).Uncompressed()
	if err != nil {
		return 0, fmt.Errorf("image store: layer %s: %w", l.Digest, err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil {
		return 0, fmt.Errorf("image store: layer %s: %w", l.Digest, err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err == nil {
		// Only a cache: a failed write costs a decompression next time.
		_ = fsutil.WriteFileAtomic(p, 0o600, []byte(strconv.FormatInt(n, 10)))
	}
	return n, nil
}
