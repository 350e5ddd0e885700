package digestutil

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand"
	"testing"
)

func TestCopyHashing(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 1, copyChunk - 1, copyChunk, copyChunk + 1, 5*copyChunk + 12345} {
		data := make([]byte, size)
		rand.New(rand.NewSource(int64(size))).Read(data)
		var dst bytes.Buffer
		h := sha256.New()
		// iotest-like: a reader that returns short reads.
		n, err := CopyHashing(&dst, &shortReader{r: bytes.NewReader(data)}, h)
		if err != nil || n != int64(size) {
			t.Fatalf("size %d: n=%d err=%v", size, n, err)
		}
		if !bytes.Equal(dst.Bytes(), data) {
			t.Fatalf("size %d: copy differs", size)
		}
		if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatalf("size %d: hash differs", size)
		}
	}
}

func TestCopyHashingErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	data := bytes.Repeat([]byte("x"), 3*copyChunk)
	if _, err := CopyHashing(io.Discard, io.MultiReader(bytes.NewReader(data), &errReader{boom}), sha256.New()); !errors.Is(err, boom) {
		t.Errorf("read error: got %v", err)
	}
	if _, err := CopyHashing(&failWriter{after: 2, err: boom}, bytes.NewReader(data), sha256.New()); !errors.Is(err, boom) {
		t.Errorf("write error: got %v", err)
	}
}

type shortReader struct{ r io.Reader }

func (s *shortReader) Read(p []byte) (int, error) {
	if len(p) > 7000 {
		p = p[:7000]
	}
	return s.r.Read(p)
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

type failWriter struct {
	after int
	err   error
}

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after == 0 {
		return 0, f.err
	}
	f.after--
	return len(p), nil
}
