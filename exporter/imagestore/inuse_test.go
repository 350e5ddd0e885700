package imagestore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/exporter"
)

// TestRemoveInUse follows docker rmi (containerd image store) for images
// that containers use: by its last name it refuses, and with force only
// untags; by ID a stopped container needs force and a running one cannot
// be forced; a second name is untagged freely. Prune keeps such images,
// also a multi-platform image whose platform's image a container runs.
func TestRemoveInUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const ctrID = "c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9"
	type step struct {
		ref       string
		force     bool
		running   bool
		err       string // "" = no error
		untagged  []string
		deleted   bool
		wantNames []string // the image's names after the step; nil = gone
	}
	tests := []struct {
		name  string
		names []string
		steps []step
	}{
		{"last name, stopped container", []string{"solo:1"}, []step{
			{ref: "solo:1", err: "conflict: unable to delete solo:1 (must be forced) - container c9c9c9c9c9c9 is using its referenced image %s", wantNames: []string{"docker.io/library/solo:1"}},
			{ref: "solo:1", force: true, untagged: []string{"docker.io/library/solo:1"}, wantNames: []string{}},
			{ref: "%s", err: "conflict: unable to delete %s (must be forced) - image is being used by stopped container c9c9c9c9c9c9", wantNames: []string{}},
			{ref: "%s", force: true, deleted: true},
		}},
		{"last name, running container", []string{"solo:1"}, []step{
			{ref: "solo:1", running: true, err: "(must be forced) - container c9c9c9c9c9c9 is using its referenced image", wantNames: []string{"docker.io/library/solo:1"}},
			{ref: "%s", running: true, force: true, err: "conflict: unable to delete %s (cannot be forced) - image is being used by running container c9c9c9c9c9c9", wantNames: []string{"docker.io/library/solo:1"}},
			{ref: "solo:1", running: true, force: true, untagged: []string{"docker.io/library/solo:1"}, wantNames: []string{}},
		}},
		{"another name", []string{"solo:1", "solo:2"}, []step{
			{ref: "solo:2", untagged: []string{"docker.io/library/solo:2"}, wantNames: []string{"docker.io/library/solo:1"}},
			{ref: "solo:1", err: "container c9c9c9c9c9c9 is using", wantNames: []string{"docker.io/library/solo:1"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, blobs, _ := open(t)
			im, err := s.Put(ctx, testImage(t, blobs, "x", t0), tt.names)
			if err != nil {
				t.Fatal(err)
			}
			id := im.ID.Encoded()[:12]
			for i, st := range tt.steps {
				ref := strings.ReplaceAll(st.ref, "%s", id)
				ctrs := []Container{{ID: ctrID, ImageID: im.ID, Running: st.running}}
				r, err := s.Remove(ref, st.force, ctrs)
				if st.err != "" {
					if want := strings.ReplaceAll(st.err, "%s", id); err == nil || !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), want) {
						t.Errorf("step %d: rmi %s: %v, want %q", i, ref, err, want)
					}
				} else if err != nil || fmt.Sprint(r.Untagged) != fmt.Sprint(st.untagged) || (r.Deleted == im.ID) != st.deleted {
					t.Errorf("step %d: rmi %s: %+v %v; want untagged %v, deleted %v", i, ref, r, err, st.untagged, st.deleted)
				}
				all, _ := s.List()
				var got []string
				for _, x := range all {
					if x.ID == im.ID {
						got = append([]string{}, x.Names...)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(st.wantNames) || (got == nil) != (st.wantNames == nil) {
					t.Fatalf("step %d: after rmi %s the image has names %#v, want %#v", i, ref, got, st.wantNames)
				}
			}
		})
	}

	// Prune, -a or not, keeps what a container runs: a dangling image, and
	// a multi-platform image by its platform's image ID.
	s, blobs, _ := open(t)
	dangling, err := s.Put(ctx, testImage(t, blobs, "dangling", t0), nil)
	if err != nil {
		t.Fatal(err)
	}
	arm := testImage(t, blobs, "arm", t0)
	arm.Config.Architecture = "arm64"
	multi, err := s.PutIndex(ctx, []*exporter.Image{testImage(t, blobs, "amd", t0), arm}, []string{"multi:1"})
	if err != nil {
		t.Fatal(err)
	}
	unused, err := s.Put(ctx, testImage(t, blobs, "unused", t0), []string{"unused:1"})
	if err != nil {
		t.Fatal(err)
	}
	ctrs := []Container{{ID: ctrID, ImageID: dangling.ID}, {ID: "d" + ctrID[1:], ImageID: multi.Platforms[1].ID}}
	for _, all := range []bool{false, true} {
		if _, err := s.Prune(all, ctrs); err != nil {
			t.Fatal(err)
		}
	}
	got := names(t, s)
	if _, ok := got["<none>"+dangling.ID.String()]; !ok || got["docker.io/library/multi:1"] != multi.ID || len(got) != 2 {
		t.Errorf("after prune and prune -a: %v; want the dangling image and multi:1 (containers use them), not %s", got, unused.ID)
	}
	if _, err := s.Remove("multi:1", false, ctrs); !errors.Is(err, ErrConflict) {
		t.Errorf("rmi of a multi-platform image a container runs: %v", err)
	}
}
