package cache

import (
	"bufio"
	"fmt"
	"io"

	"github.com/builderdev/builder/internal/digestutil"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
)

// DockerZstdLayer is the Docker-family media type of a zstd layer, as
// BuildKit writes with oci-mediatypes=false,compression=zstd.
const DockerZstdLayer = "application/vnd.docker.image.rootfs.diff.tar.zstd"

// Layer describes a layer blob kept in a BlobStore.
type Layer struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"` // of the compressed blob
	Size      int64         `json:"size"`   // of the compressed blob
	DiffID    digest.Digest `json:"diffID"` // of the uncompressed tar
}

// V1Layer returns l as a go-containerregistry layer reading from s, so the
// exporters (layout, tarball, remote) can use it without copies.
func (s *BlobStore) V1Layer(l Layer) v1.Layer {
	return &storeLayer{s: s, l: l}
}

type storeLayer struct {
	s *BlobStore
	l Layer
}

func (x *storeLayer) Digest() (v1.Hash, error) { return digestutil.ToHash(x.l.Digest) }
func (x *storeLayer) DiffID() (v1.Hash, error) { return digestutil.ToHash(x.l.DiffID) }
func (x *storeLayer) Size() (int64, error)     { return x.l.Size, nil }
func (x *storeLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(x.l.MediaType), nil
}
func (x *storeLayer) Compressed() (io.ReadCloser, error) { return x.s.Open(x.l.Digest) }

// Uncompressed decompresses gzip and zstd layers; uncompressed media types
// are returned as stored.
func (x *storeLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := x.s.Open(x.l.Digest)
	if err != nil {
		return nil, err
	}
	switch types.MediaType(x.l.MediaType) {
	case types.OCIUncompressedLayer, types.DockerUncompressedLayer:
		return f, nil
	case types.OCILayer, types.DockerLayer, types.DockerForeignLayer, types.OCIRestrictedLayer:
		// klauspost's inflater is about twice as fast as the standard
		// library's on layer data; 64 KiB reads instead of 4 KiB.
		zr, err := gzip.NewReader(bufio.NewReaderSize(f, 64<<10))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("layer %s: %w", x.l.Digest, err)
		}
		return &readCloser{Reader: zr, close: func() error { zr.Close(); return f.Close() }}, nil
	case types.OCILayerZStd, DockerZstdLayer:
		zr, err := zstd.NewReader(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("layer %s: %w", x.l.Digest, err)
		}
		return &readCloser{Reader: zr, close: func() error { zr.Close(); return f.Close() }}, nil
	default:
		f.Close()
		return nil, fmt.Errorf("layer %s: unsupported media type %q", x.l.Digest, x.l.MediaType)
	}
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }
