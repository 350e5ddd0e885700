package ops

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/llb"
	v1 "github.com/google/go-containerregistry/pkg/v1"
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

func TestMarkEmptyHistory(t *testing.T) {
	cfg := v1.ConfigFile{History: []v1.History{
		{CreatedBy: "base layer"},
		{CreatedBy: "CMD", EmptyLayer: true},
		{CreatedBy: "WORKDIR /app"},
		{CreatedBy: "ENV A=1", EmptyLayer: true},
		{CreatedBy: "RUN true"},
		{CreatedBy: "COPY x ."},
	}}
	chain := []*record{{Empty: true}, {Empty: true}, {Empty: false}}
	got := markEmptyHistory(cfg, chain)
	var flags []string
	for _, h := range got.History {
		if h.EmptyLayer {
			flags = append(flags, h.CreatedBy)
		}
	}
	if want := "CMD|WORKDIR /app|ENV A=1|RUN true"; strings.Join(flags, "|") != want {
		t.Errorf("empty layers %q, want %q", strings.Join(flags, "|"), want)
	}
	if cfg.History[2].EmptyLayer {
		t.Error("markEmptyHistory changed its argument's history")
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
