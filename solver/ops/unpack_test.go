package ops

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/snapshot"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// zeroTar streams a tar of one file of size zero bytes into w.
func zeroTar(t *testing.T, w io.Writer, size int64) {
	t.Helper()
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		if _, err := tw.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		left -= n
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// putLayer stores blob as a gzip layer with the given diff ID.
func putLayer(t *testing.T, blobs *cache.BlobStore, blob []byte, diffID digest.Digest) cache.Layer {
	t.Helper()
	d, n, err := blobs.Put(context.Background(), bytes.NewReader(blob), "", -1)
	if err != nil {
		t.Fatal(err)
	}
	return cache.Layer{MediaType: string(types.OCILayer), Digest: d, Size: n, DiffID: diffID}
}

func gz(t *testing.T, fn func(w io.Writer)) (blob []byte, diffID digest.Digest) {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	h := sha256.New()
	fn(io.MultiWriter(zw, h))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))
}

// TestUnpackLayerRejectsBadLayers: a decompression bomb stops at the size
// limit, and corrupt or mislabelled layers are refused; none of them
// leaves a snapshot (committed or active) behind.
func TestUnpackLayerRejectsBadLayers(t *testing.T) {
	dir := t.TempDir()
	sn, err := snapshot.NewNamed(filepath.Join(dir, "snapshots"), "native")
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	blobs, err := cache.OpenBlobStore(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	good, goodID := gz(t, func(w io.Writer) { zeroTar(t, w, 10) })
	// 256 MiB of zeros compress to about 256 KiB.
	bomb, bombID := gz(t, func(w io.Writer) { zeroTar(t, w, 256<<20) })
	if len(bomb) > 2<<20 {
		t.Fatalf("bomb is %d bytes compressed", len(bomb))
	}
	trailing := append(append([]byte(nil), good...), "garbage after the gzip stream"...)

	tests := []struct {
		name    string
		layer   cache.Layer
		max     int64
		wantErr string
		target  error
	}{
		{"good", putLayer(t, blobs, good, goodID), 0, "", nil},
		{"bomb", putLayer(t, blobs, bomb, bombID), 1 << 20, "more than 1048576 bytes", ErrLayerTooLarge},
		{"wrong diff id", putLayer(t, blobs, good, digest.FromString("other")), 0, "the image config says", nil},
		{"truncated", putLayer(t, blobs, good[:len(good)/2], goodID), 0, "unexpected EOF", nil},
		{"trailing garbage", putLayer(t, blobs, trailing, goodID), 0, "gzip", nil},
		{"not gzip", putLayer(t, blobs, []byte("plain bytes, no gzip here"), goodID), 0, "gzip", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "layer-" + strings.ReplaceAll(tt.name, " ", "-")
			err := UnpackLayer(ctx, sn, blobs, name, "", tt.layer, UnpackOptions{MaxSize: tt.max})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("UnpackLayer: %v", err)
				}
				if _, err := sn.Stat(ctx, name); err != nil {
					t.Fatalf("good layer not committed: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("UnpackLayer = %v, want an error containing %q", err, tt.wantErr)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("error %v is not %v", err, tt.target)
			}
			if _, err := sn.Stat(ctx, name); !errors.Is(err, snapshot.ErrNotFound) {
				t.Errorf("a snapshot was kept for the bad layer: %v", err)
			}
		})
	}
	var left []string
	sn.Walk(ctx, func(i snapshot.Info) error {
		left = append(left, i.Name)
		return nil
	})
	if strings.Join(left, ",") != "layer-good" {
		t.Errorf("snapshots after the bad layers: %v, want only layer-good", left)
	}
	if n := ChainName(nil); n != "" {
		t.Errorf("ChainName(nil) = %q", n)
	}
}
