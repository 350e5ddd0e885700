package ops

import (
	"archive/tar"
	"bytes"
	"context"
	"testing"

	"github.com/builderdev/builder/cache"
	"github.com/google/go-containerregistry/pkg/v1/types"
	godigest "github.com/opencontainers/go-digest"
)

func TestConvertLayer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	blobs, err := cache.OpenBlobStore(dir + "/blobs")
	if err != nil {
		t.Fatal(err)
	}
	meta, err := cache.OpenMetaStore(dir + "/meta")
	if err != nil {
		t.Fatal(err)
	}
	w := New(Options{Blobs: blobs, Meta: meta})
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: 5, Typeflag: tar.TypeReg})
	tw.Write([]byte("hello"))
	tw.Close()
	d, n, err := blobs.Put(context.Background(), bytes.NewReader(b.Bytes()), "", -1)
	if err != nil {
		t.Fatal(err)
	}
	raw := cache.Layer{MediaType: string(types.OCIUncompressedLayer), Digest: d, Size: n, DiffID: d}
	tests := []struct {
		lo   LayerOptions
		want types.MediaType
		same bool // no conversion
	}{
		{LayerOptions{Compression: Uncompressed}, types.OCIUncompressedLayer, true},
		{LayerOptions{Compression: Gzip}, types.OCILayer, false},
		{LayerOptions{Compression: Gzip, Level: 9}, types.OCILayer, false},
		{LayerOptions{Compression: Zstd}, types.OCILayerZStd, false},
		{LayerOptions{Compression: Zstd, Level: 19}, types.OCILayerZStd, false},
	}
	for _, tt := range tests {
		got, err := w.convertLayer(context.Background(), raw, tt.lo)
		if err != nil {
			t.Fatalf("%+v: %v", tt.lo, err)
		}
		if types.MediaType(got.MediaType) != tt.want || got.DiffID != raw.DiffID || (got == raw) != tt.same {
			t.Errorf("%+v: %+v", tt.lo, got)
		}
		// Round trip through the store's decompression.
		rc, err := blobs.V1Layer(got).Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		var back bytes.Buffer
		back.ReadFrom(rc)
		rc.Close()
		if !bytes.Equal(back.Bytes(), b.Bytes()) {
			t.Errorf("%+v: content differs after round trip", tt.lo)
		}
		// Cached: the second conversion returns the same blob without
		// writing a new one.
		before := countBlobs(t, blobs)
		again, err := w.convertLayer(context.Background(), raw, tt.lo)
		if err != nil || again != got || countBlobs(t, blobs) != before {
			t.Errorf("%+v: second conversion %+v, %v", tt.lo, again, err)
		}
	}
	for _, bad := range []LayerOptions{{Compression: "lz4"}, {Compression: Gzip, Level: 10}, {Compression: Zstd, Level: 23}} {
		if bad.Validate() == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func countBlobs(t *testing.T, s *cache.BlobStore) int {
	n := 0
	if err := s.Walk(func(_ godigest.Digest, _ int64) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}
