package ops

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/snapshot"
	digest "github.com/opencontainers/go-digest"
)

// DefaultMaxLayerSize is the largest uncompressed layer UnpackLayer
// accepts when no other limit is given: 64 GiB, larger than any real
// layer, small enough that a decompression bomb (gigabytes of zeros that
// gzip squeezes into a few megabytes) stops long before it fills a disk.
const DefaultMaxLayerSize int64 = 64 << 30

// ErrLayerTooLarge is returned (wrapped) for a layer whose uncompressed
// tar is larger than the limit.
var ErrLayerTooLarge = errors.New("uncompressed layer too large")

// UnpackOptions tune UnpackLayer.
type UnpackOptions struct {
	// MaxSize bounds the uncompressed size of the layer tar; 0 means
	// DefaultMaxLayerSize, a negative value no limit.
	MaxSize int64
}

// ChainName is the snapshot name of the image layers up to and including
// the last of layers: "layer-" + the hex of the OCI chain ID. Images that
// share base layers share these snapshots.
func ChainName(layers []cache.Layer) string {
	var chain digest.Digest
	for _, l := range layers {
		if chain == "" {
			chain = l.DiffID
		} else {
			chain = digest.FromString(chain.String() + " " + l.DiffID.String())
		}
	}
	if chain == "" {
		return ""
	}
	return "layer-" + chain.Encoded()
}

// UnpackLayers unpacks layers (base first) from blobs into committed
// snapshots named by ChainName, reusing those that exist, and returns the
// name of the top one ("" for no layers).
func UnpackLayers(ctx context.Context, sn snapshot.Snapshotter, blobs *cache.BlobStore, layers []cache.Layer, opt UnpackOptions) (string, error) {
	parent := ""
	for i, l := range layers {
		name := ChainName(layers[:i+1])
		if err := UnpackLayer(ctx, sn, blobs, name, parent, l, opt); err != nil {
			return "", fmt.Errorf("unpacking layer %s: %w", l.Digest, err)
		}
		parent = name
	}
	return parent, nil
}

// UnpackLayer makes committed snapshot name = parent + layer l (read from
// blobs), unless a snapshot of that name exists. The uncompressed tar is
// streamed into the snapshot and checked against l.DiffID and
// opt.MaxSize on the way: a layer that is too large, corrupt or does not
// match its diff ID leaves nothing behind. Callers serialise concurrent
// unpacks of the same name (a lost race on Commit is not an error).
func UnpackLayer(ctx context.Context, sn snapshot.Snapshotter, blobs *cache.BlobStore, name, parent string, l cache.Layer, opt UnpackOptions) error {
	if _, err := sn.Stat(ctx, name); err == nil {
		return nil
	}
	max := opt.MaxSize
	if max == 0 {
		max = DefaultMaxLayerSize
	}
	key := newID("unpack-")
	if _, err := sn.Prepare(ctx, key, parent); err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			sn.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	if err := applyLayer(ctx, sn, blobs, key, l, max); err != nil {
		return err
	}
	if err := sn.Commit(ctx, name, key); err != nil {
		if errors.Is(err, snapshot.ErrAlreadyExists) {
			return nil
		}
		return err
	}
	committed = true
	return nil
}

// applyLayer extracts layer l (read from blobs) into the active snapshot
// key, failing past max uncompressed bytes (negative: no limit) and when the
// uncompressed stream does not match l.DiffID (when set).
func applyLayer(ctx context.Context, sn snapshot.Snapshotter, blobs *cache.BlobStore, key string, l cache.Layer, max int64) error {
	rc, err := blobs.V1Layer(l).Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	vr := &verifyingReader{r: rc, h: sha256.New(), max: max}
	if err := sn.Apply(ctx, key, vr); err != nil {
		if vr.err != nil {
			return vr.err
		}
		return err
	}
	// Apply may stop at the tar's end-of-archive marker: the diff ID
	// covers the whole stream, padding included.
	if _, err := io.Copy(io.Discard, vr); err != nil {
		return err
	}
	if l.DiffID != "" {
		got := digest.NewDigestFromBytes(digest.SHA256, vr.h.Sum(nil))
		if got != l.DiffID {
			return fmt.Errorf("layer %s: uncompressed content has digest %s, the image config says %s", l.Digest, got, l.DiffID)
		}
	}
	return nil
}

// verifyingReader hashes what it reads and fails past max bytes.
type verifyingReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	max int64
	err error
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.max >= 0 && int64(len(p)) > v.max-v.n+1 {
		p = p[:v.max-v.n+1]
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	if v.max >= 0 && v.n > v.max {
		v.err = fmt.Errorf("%w: more than %d bytes", ErrLayerTooLarge, v.max)
		return 0, v.err
	}
	v.h.Write(p[:n])
	if err != nil && err != io.EOF {
		v.err = err
	}
	return n, err
}
