package pgzip

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand"
	"runtime"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// testInput is half random, half repetitive, so both the literal and the
// match paths of deflate run, and matches cross block boundaries.
func testInput(n int) []byte {
	r := rand.New(rand.NewSource(int64(n)))
	b := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		end := min(i+4096, n)
		if (i/4096)%2 == 0 {
			r.Read(b[i:end])
		} else {
			copy(b[i:end], "a repeated line of text, again and again\n")
			for j := i + 41; j < end; j++ {
				b[j] = b[j-41]
			}
		}
	}
	return b
}

func compressPar(t *testing.T, data []byte, level, chunk int) []byte {
	t.Helper()
	var out bytes.Buffer
	z, err := NewWriterLevel(&out, level)
	if err != nil {
		t.Fatal(err)
	}
	for p := data; len(p) > 0; {
		k := min(chunk, len(p))
		if _, err := z.Write(p[:k]); err != nil {
			t.Fatal(err)
		}
		p = p[k:]
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestSmallInputMatchesSingleStream: below one block the bytes are the
// single-stream writer's, so the digests of small layers do not change.
func TestSmallInputMatchesSingleStream(t *testing.T) {
	for _, n := range []int{0, 1, 1000, 100 << 10, BlockSize - 1} {
		for _, level := range []int{gzip.DefaultCompression, gzip.BestSpeed, gzip.BestCompression} {
			data := testInput(n)
			var want bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&want, level)
			zw.Write(data)
			zw.Close()
			if got := compressPar(t, data, level, 32<<10); !bytes.Equal(got, want.Bytes()) {
				t.Errorf("size %d level %d: output differs from klauspost/compress/gzip", n, level)
			}
		}
	}
}

// TestRoundTripAndDeterminism: large inputs decode with the standard
// reader, and the bytes do not depend on write sizes or cores.
func TestRoundTripAndDeterminism(t *testing.T) {
	for _, n := range []int{BlockSize, BlockSize + 1, 3*BlockSize - 7, 5 * BlockSize} {
		data := testInput(n)
		a := compressPar(t, data, gzip.DefaultCompression, 32<<10)
		old := runtime.GOMAXPROCS(1)
		b := compressPar(t, data, gzip.DefaultCompression, 7777)
		runtime.GOMAXPROCS(4)
		c := compressPar(t, data, gzip.DefaultCompression, n)
		runtime.GOMAXPROCS(old)
		if sha256.Sum256(a) != sha256.Sum256(b) || !bytes.Equal(a, c) {
			t.Fatalf("size %d: output depends on write sizes or GOMAXPROCS", n)
		}
		zr, err := gzip.NewReader(bytes.NewReader(a))
		if err != nil {
			t.Fatal(err)
		}
		zr.Multistream(false)
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("size %d: round trip differs", n)
		}
		if len(a) > n/2+n/20+1024 {
			t.Errorf("size %d: compressed to %d, expected about half", n, len(a))
		}
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, io.ErrShortWrite
	}
	return len(p), nil
}

func TestWriteErrorStops(t *testing.T) {
	z, _ := NewWriterLevel(&failWriter{n: 100}, gzip.DefaultCompression)
	data := testInput(20 * BlockSize)
	var err error
	for p := data; len(p) > 0 && err == nil; p = p[min(len(p), 1<<16):] {
		_, err = z.Write(p[:min(len(p), 1<<16)])
	}
	if cerr := z.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		t.Fatal("expected the write error")
	}
}
