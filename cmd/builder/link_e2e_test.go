package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCopyLinkRebase rebuilds a COPY --link on changed bases with the same
// --root: the copy's vertex is cached (its key does not depend on the base;
// the progress shows the instruction as one step with the merge, which runs
// again), its layer is the same blob, and the image has the new base below
// it.
func TestCopyLinkRebase(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	root := t.TempDir()
	ctxDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctxDir, "f"), []byte("link\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	withContext := func(o *BuildOptions) { o.ContextDir, o.Progress = ctxDir, "rawjson" }
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
		if copyCached := linkCopyCached(t, progress, linkStep); copyCached != (i > 0) {
			t.Errorf("%s: the copy of %q cached %v, want %v\n%s", b.name, linkStep, copyCached, i > 0, progress)
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

// linkCopyCached reports whether the copy of the COPY --link step named
// (suffix) step was cached, from a rawjson progress: the weak member of the
// step's progress group.
func linkCopyCached(t *testing.T, progress, step string) bool {
	t.Helper()
	var cached, seen bool
	for _, l := range strings.Split(strings.TrimSpace(progress), "\n") {
		var ev struct {
			Vertexes []struct {
				Name          string
				Cached        bool
				Completed     *string
				ProgressGroup *struct {
					Name string
					Weak bool
				} `json:"progressGroup"`
			}
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("rawjson line %q: %v", l, err)
		}
		for _, v := range ev.Vertexes {
			if g := v.ProgressGroup; g != nil && g.Weak && strings.HasSuffix(g.Name, step) && v.Completed != nil {
				cached, seen = v.Cached, true
			}
		}
	}
	if !seen {
		t.Fatalf("no completed copy of %q in a progress group:\n%s", step, progress)
	}
	return cached
}
