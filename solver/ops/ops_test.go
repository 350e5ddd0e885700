package ops

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/llb"
)

func TestTailBufferKeepsLastLines(t *testing.T) {
	tb := &tailBuffer{max: 3}
	for _, chunk := range []string{"one\ntw", "o\nthree\n", "four\nfi", "ve"} {
		tb.Write([]byte(chunk))
	}
	if got := strings.Join(tb.lines(), "|"); got != "three|four|five" {
		t.Errorf("tail = %q, want three|four|five", got)
	}
}

// TestEmptyLayerIsBuildKits checks that a step that changed nothing gets
// BuildKit's empty layer: an empty tar, gzip'd to the well-known blob.
func TestEmptyLayerIsBuildKits(t *testing.T) {
	zr, err := gzip.NewReader(bytes.NewReader(emptyLayerGzip))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != emptyTarSize || strings.Trim(string(data), "\x00") != "" {
		t.Errorf("empty layer holds %d bytes, want %d zero bytes", len(data), emptyTarSize)
	}
	sum := sha256.Sum256(emptyLayerGzip)
	if got, want := hex.EncodeToString(sum[:]), "4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1"; got != want {
		t.Errorf("empty layer digest %s, want %s", got, want)
	}
}

func TestCacheMountDirStaysInStateDir(t *testing.T) {
	state := t.TempDir()
	w := New(Options{StateDir: state})
	for _, id := range []string{"../../..", "/etc", "a/../../b", "go-build"} {
		dir, err := w.cacheMountDir(llb.Mount{CacheID: id, Dest: "/cache"})
		if err != nil {
			t.Fatal(err)
		}
		rel, err := filepath.Rel(filepath.Join(state, "cache-mounts"), dir)
		if err != nil || strings.HasPrefix(rel, "..") || strings.Contains(rel, "/") {
			t.Errorf("cache id %q maps to %s, outside %s/cache-mounts", id, dir, state)
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Errorf("cache dir %s: %v", dir, err)
		}
	}
}
