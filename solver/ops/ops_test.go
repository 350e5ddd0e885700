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
	"time"

	"github.com/builderdev/builder/llb"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestTailBufferKeepsLastLines(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

func TestHistoryTimes(t *testing.T) {
	at := func(s int64) v1.Time { return v1.Time{Time: time.Unix(s, 0).UTC()} }
	tests := []struct {
		name    string
		in      []v1.Time // zero = unset
		want    []v1.Time
		created v1.Time
	}{
		{"metadata before first step takes the step's time",
			[]v1.Time{at(1), {}, at(5), {}, at(7)}, []v1.Time{at(1), at(5), at(5), at(5), at(7)}, at(7)},
		{"metadata after the last step takes its time",
			[]v1.Time{at(1), at(3), {}}, []v1.Time{at(1), at(3), at(3)}, at(3)},
		{"only base times: metadata takes the last one",
			[]v1.Time{at(1), at(2), {}, {}}, []v1.Time{at(1), at(2), at(2), at(2)}, at(2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cfg v1.ConfigFile
			for _, c := range tc.in {
				cfg.History = append(cfg.History, v1.History{Created: c})
			}
			got := historyTimes(cfg)
			for i, h := range got.History {
				if !h.Created.Equal(tc.want[i].Time) {
					t.Errorf("history[%d] = %v, want %v", i, h.Created, tc.want[i])
				}
			}
			if !got.Created.Equal(tc.created.Time) {
				t.Errorf("created = %v, want %v", got.Created, tc.created)
			}
			if !cfg.History[1].Created.Equal(tc.in[1].Time) {
				t.Error("historyTimes changed its argument")
			}
		})
	}
}

func TestStepTimesKeepResultTimes(t *testing.T) {
	t.Parallel()
	made := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	cfg := v1.ConfigFile{History: []v1.History{{CreatedBy: "base", Created: v1.Time{Time: time.Unix(1, 0)}}, {CreatedBy: "RUN x"}}}
	got := stepTimes(cfg, []*record{{Created: made}})
	if !got.History[1].Created.Equal(made) || !got.History[0].Created.Equal(time.Unix(1, 0)) {
		t.Errorf("history times %v, want the base's and the result's %v", got.History, made)
	}
}
