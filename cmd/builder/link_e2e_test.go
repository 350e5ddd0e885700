package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCopyLinkRebase rebuilds a COPY --link on changed bases with the same
// --root: the copy's step is CACHED (its key does not depend on the base),
// its layer is the same blob, and the image has the new base below it.
func TestCopyLinkRebase(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	root := t.TempDir()
	ctxDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctxDir, "f"), []byte("link\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	withContext := func(o *BuildOptions) { o.ContextDir = ctxDir }
	const linkStep = "COPY --link f /app/"
	builds := []struct {
		name, df string
		// base is the content of /base.txt, "" when the base has none.
		base string
		// layers before the link layer.
		below int
	}{
		{"first", "ARG BASE\nFROM $BASE\nRUN echo one > /base.txt\nCOPY --link f /app/\n", "one\n", 1},
		{"RUN before the COPY changed", "ARG BASE\nFROM $BASE\nRUN echo two > /base.txt\nCOPY --link f /app/\n", "two\n", 1},
		{"FROM another image", "FROM scratch\nCOPY --link f /app/\n", "", 0},
		{"same base again", "ARG BASE\nFROM $BASE\nRUN echo one > /base.txt\nCOPY --link f /app/\n", "one\n", 1},
	}
	var linkLayer string
	for i, b := range builds {
		progress, data := env.buildDockerfile(t, b.df, root, withContext)
		img := ociImage(t, data)
		var copyState string
		for name, st := range stepStates(progress) {
			if strings.HasSuffix(name, linkStep) {
				copyState = st
			}
		}
		want := "CACHED"
		if i == 0 {
			want = "DONE"
		}
		if copyState != want {
			t.Errorf("%s: %q is %q, want %s\n%s", b.name, linkStep, copyState, want, progress)
		}
		if got, hdr := fileInImage(t, img, "app/f"); got != "link\n" || hdr.Uid != 0 {
			t.Errorf("%s: app/f = %q uid %d", b.name, got, hdr.Uid)
		}
		if b.base != "" {
			if got, _ := fileInImage(t, img, "base.txt"); got != b.base {
				t.Errorf("%s: base.txt = %q, want the new base's %q", b.name, got, b.base)
			}
		}
		layers := layerDigests(t, img)
		baseLayers, err := baseLayerCount(env.base, img)
		if err != nil {
			t.Fatal(err)
		}
		if b.base == "" {
			baseLayers = 0
		}
		if len(layers) != baseLayers+b.below+1 {
			t.Fatalf("%s: %d layers, want %d base + %d + the link layer", b.name, len(layers), baseLayers, b.below)
		}
		last := layers[len(layers)-1]
		if linkLayer == "" {
			linkLayer = last
		} else if last != linkLayer {
			t.Errorf("%s: link layer %s, want the first build's %s", b.name, last, linkLayer)
		}
	}
}
