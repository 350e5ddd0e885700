package ops

import (
	"context"
	"os"
	"testing"

	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/solver"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func execVertex(t *testing.T, w *Worker, v *llb.Vertex, inputs ...solver.Result) solver.Result {
	t.Helper()
	op, err := w.ResolveOp(v)
	if err != nil {
		t.Fatal(err)
	}
	r, err := op.Exec(context.Background(), inputs)
	if err != nil {
		t.Fatalf("%s: %v", v.Name(), err)
	}
	return r
}

func fileVertex(name string, base int, inputs []*llb.Vertex, actions ...llb.FileAction) *llb.Vertex {
	return llb.NewVertex(llb.FileOp{Base: base, Actions: actions}, inputs, llb.Meta{Name: name})
}

// TestMergeAppliesLinkLayer merges a copy made on scratch onto two
// different bases: the tree is the base with the copy's layer applied (its
// /app metadata wins, as BuildKit's merge of a COPY --link), and the
// image's last layer is the scratch copy's own blob on both bases.
func TestMergeAppliesLinkLayer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	ctx := context.Background()
	w := newRemoteWorker(t)
	base := func(name, data string) solver.Result {
		v := fileVertex(name, -1, nil,
			llb.FileAction{Mkdir: &llb.Mkdir{Path: "/app", Mode: 0o700, Chown: &llb.Chown{User: "1000", Group: "1000"}}},
			llb.FileAction{Mkfile: &llb.Mkfile{Path: "/app/old", Mode: 0o644, Data: []byte(data)}},
			llb.FileAction{Mkfile: &llb.Mkfile{Path: "/f", Mode: 0o600, Data: []byte("replaced")}})
		return execVertex(t, w, v)
	}
	link := execVertex(t, w, fileVertex("link", -1, nil,
		llb.FileAction{Mkdir: &llb.Mkdir{Path: "/app", Mode: 0o755, MakeParents: true}},
		llb.FileAction{Mkfile: &llb.Mkfile{Path: "/app/f", Mode: 0o644, Data: []byte("new")}},
		llb.FileAction{Mkfile: &llb.Mkfile{Path: "/f", Mode: 0o644, Data: []byte("linked")}}))
	mergeV := llb.NewVertex(llb.MergeOp{}, []*llb.Vertex{nil, nil}, llb.Meta{Name: "LINK"})

	var lastLayers []string
	for _, b := range []struct{ name, data string }{{"base1", "one"}, {"base2", "two"}} {
		br := base(b.name, b.data)
		merged := execVertex(t, w, mergeV, br, link)
		tree := readTree(t, w, merged)
		for p, want := range map[string]string{"app/old": b.data, "app/f": "new", "f": "linked"} {
			if got := tree[p]; got.data != want {
				t.Errorf("%s: %s = %q, want %q", b.name, p, got.data, want)
			}
		}
		if m := tree["app"].mode; m.Perm() != 0o755 {
			t.Errorf("%s: /app mode %v, want the link layer's 0755", b.name, m)
		}
		if m := tree["f"].mode; m.Perm() != 0o644 {
			t.Errorf("%s: /f mode %v, want the link layer's 0644", b.name, m)
		}
		cfg, layers, err := w.Image(ctx, merged, v1.ConfigFile{})
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != 2 || len(cfg.RootFS.DiffIDs) != 2 {
			t.Fatalf("%s: %d layers, %d diff IDs, want base + link", b.name, len(layers), len(cfg.RootFS.DiffIDs))
		}
		linkRec := refRecord(link)
		if layers[1] != *linkRec.Layer {
			t.Errorf("%s: last layer %v is not the scratch copy's blob %v", b.name, layers[1], *linkRec.Layer)
		}
		lastLayers = append(lastLayers, layers[1].Digest.String())
		if layers[0] != *refRecord(br).Layer {
			t.Errorf("%s: first layer is not the base's", b.name)
		}

		// A step on top of the merge diffs against the merged tree.
		top := execVertex(t, w, fileVertex("top", 0, []*llb.Vertex{mergeV},
			llb.FileAction{Mkfile: &llb.Mkfile{Path: "/top", Mode: 0o644, Data: []byte("t")}}), merged)
		_, layers, err = w.Image(ctx, top, v1.ConfigFile{})
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != 3 || layers[1] != *linkRec.Layer {
			t.Fatalf("%s: a step on the merge has layers %v, want base, link, step", b.name, layers)
		}
		n, err := w.baseLayerCount(top)
		if err != nil || n != 0 {
			t.Errorf("%s: baseLayerCount = %d, %v; want 0 (no image)", b.name, n, err)
		}
	}
	if lastLayers[0] != lastLayers[1] {
		t.Errorf("the link layer differs between bases: %v", lastLayers)
	}
}

// TestMergeRecordReload: a merge result stored by one worker is reloaded
// with its inputs by another (a later build).
func TestMergeRecordReload(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for snapshots")
	}
	ctx := context.Background()
	w := newRemoteWorker(t)
	a := execVertex(t, w, fileVertex("a", -1, nil, llb.FileAction{Mkfile: &llb.Mkfile{Path: "/a", Mode: 0o644, Data: []byte("a")}}))
	b := execVertex(t, w, fileVertex("b", -1, nil, llb.FileAction{Mkfile: &llb.Mkfile{Path: "/b", Mode: 0o644, Data: []byte("b")}}))
	merged := execVertex(t, w, llb.NewVertex(llb.MergeOp{}, []*llb.Vertex{nil, nil, nil}, llb.Meta{Name: "m"}), a, nil, b)
	w2 := New(w.opt)
	r, err := w2.LoadResult(ctx, merged.ID())
	if err != nil {
		t.Fatal(err)
	}
	_, layers, err := w2.Image(ctx, r, v1.ConfigFile{})
	if err != nil {
		t.Fatal(err)
	}
	ra, err := w2.loadRecord(a.ID())
	if err != nil {
		t.Fatal(err)
	}
	rb, err := w2.loadRecord(b.ID())
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 || ra.Layer == nil || rb.Layer == nil || layers[0] != *ra.Layer || layers[1] != *rb.Layer {
		t.Errorf("reloaded merge layers %v, want a's then b's", layers)
	}
	if tree := readTree(t, w2, r); tree["a"].data != "a" || tree["b"].data != "b" {
		t.Errorf("merged tree %v", keys(tree))
	}
}
