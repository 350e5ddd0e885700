package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestOverlayFlattensDeepChains: past flattenDepth a chain mounts through
// flat directories (at most flattenDepth+1 lower directories), and the
// merged tree is the same as the whole chain's: deletions and opaque
// directories of the flattened layers hold, and the diff of a layer on
// top still sees every layer below.
func TestOverlayFlattensDeepChains(t *testing.T) {
	needRoot(t)
	defer func(d int) { flattenDepth = d }(flattenDepth)
	flattenDepth = 3
	sn, err := NewNamed(t.TempDir(), "overlay")
	if err != nil {
		t.Skipf("overlay not usable: %v", err)
	}
	defer sn.Close()
	ctx := context.Background()
	layers := [][]string{
		{"d/", "d/x0", "f0"}, {"f1", "d/x1"}, {"f2"}, {"f3", "d/x3"}, {"f4"},
		{".wh.f1", "f5"}, {"f6", "d/x6"}, {"d/", "d/.wh..wh..opq", "d/only7", "f7"},
		{"f8", "d/x8"}, {"f9"}, {"f10", ".wh.f3"}, {"f11"},
	}
	parent := ""
	for i, l := range layers {
		key, name := fmt.Sprintf("a%d", i), fmt.Sprintf("c%d", i)
		if _, err := sn.Prepare(ctx, key, parent); err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		if err := sn.Apply(ctx, key, bytes.NewReader(tarOf(t, l...))); err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		if err := sn.Commit(ctx, name, key); err != nil {
			t.Fatal(err)
		}
		parent = name
	}
	ms, err := sn.Prepare(ctx, "top", parent)
	if err != nil {
		t.Fatal(err)
	}
	var lower string
	for _, o := range ms[0].Options {
		if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
			lower = v
		}
	}
	dirs := strings.Split(lower, ":")
	if len(dirs) > flattenDepth+1 || !strings.HasSuffix(dirs[len(dirs)-1], "/flat") {
		t.Fatalf("lowerdir of a %d-layer chain: %q", len(layers), lower)
	}
	var got []string
	err = WithMounts(ctx, [][]Mount{ms}, func(r []string) error {
		if err := os.WriteFile(filepath.Join(r[0], "d", "new"), nil, 0o644); err != nil {
			return err
		}
		return filepath.Walk(r[0], func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			if rel, _ := filepath.Rel(r[0], p); rel != "." {
				got = append(got, rel)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	want := "d,d/new,d/only7,d/x8,f0,f10,f11,f2,f4,f5,f6,f7,f8,f9"
	if strings.Join(got, ",") != want {
		t.Errorf("merged tree:\n got %s\nwant %s", strings.Join(got, ","), want)
	}
	if err := sn.Commit(ctx, "topc", "top"); err != nil {
		t.Fatal(err)
	}
	var diff bytes.Buffer
	if err := sn.Diff(ctx, "topc", &diff); err != nil {
		t.Fatal(err)
	}
	if names := tarNames(t, diff.Bytes()); names != "d/,d/new" {
		t.Errorf("diff of the top layer: %s", names)
	}
	// The flat directories are reused, not rebuilt, by a sibling.
	flats, _ := filepath.Glob(filepath.Join(sn.(*store).root, "snapshots", "*", "flat"))
	if _, err := sn.Prepare(ctx, "sibling", parent); err != nil {
		t.Fatal(err)
	}
	again, _ := filepath.Glob(filepath.Join(sn.(*store).root, "snapshots", "*", "flat"))
	if len(flats) == 0 || len(again) != len(flats) {
		t.Errorf("flat directories: %d, then %d after a sibling", len(flats), len(again))
	}
	tmps, _ := filepath.Glob(filepath.Join(sn.(*store).root, "snapshots", "*", "flat.tmp-*"))
	if len(tmps) > 0 {
		t.Errorf("temporary flat directories left: %v", tmps)
	}
}
