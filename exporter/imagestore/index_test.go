package imagestore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/exporter"
	"github.com/builderdev/builder/llb"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
)

// TestPutIndex stores a two-platform image: one entry for images, tag and
// rmi, both platforms for inspect and save, one picked by platform for
// run and FROM, every blob kept from the garbage collector.
func TestPutIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, blobs, _ := open(t)
	amd := testImage(t, blobs, "amd64", time.Unix(10, 0))
	arm := testImage(t, blobs, "arm64", time.Unix(20, 0))
	arm.Config.Architecture = "arm64"
	st, err := s.PutIndex(ctx, []*exporter.Image{amd, arm}, []string{"app:1"})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Manifest.MediaType.IsIndex() || st.ID.String() != st.Manifest.Digest.String() || len(st.Platforms) != 2 {
		t.Fatalf("stored %+v, want an index whose ID is its digest", st)
	}
	all, err := s.List()
	if err != nil || len(all) != 1 || all[0].ID != st.ID || !all[0].Created.Equal(time.Unix(20, 0)) {
		t.Fatalf("List: %v %+v, want the index once, created as its newest image", err, all)
	}
	if err := s.Tag("app:1", "app:2"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, s); got["docker.io/library/app:2"] != st.ID || len(got) != 2 {
		t.Errorf("after tag: %v", got)
	}
	im, err := s.Get("app:2")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		p    llb.Platform
		arch string
		err  string
	}{
		{llb.Platform{OS: "linux", Architecture: "arm64"}, "arm64", ""},
		{llb.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "arm64", ""},
		{llb.Platform{}, "amd64", ""}, // the host's (the test runs on amd64 or skips below)
		{llb.Platform{OS: "linux", Architecture: "s390x"}, "", "no image for platform linux/s390x (available: linux/amd64, linux/arm64)"},
	} {
		if tt.p.IsZero() && llb.HostPlatform().Architecture != "amd64" {
			continue
		}
		c, err := Select(im, tt.p)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Select(%s): %v, want %q", tt.p, err, tt.err)
			}
			continue
		}
		if err != nil || c.Platform == nil || c.Platform.Architecture != tt.arch {
			t.Errorf("Select(%s): %+v %v, want %s", tt.p, c.Platform, err, tt.arch)
			continue
		}
		img, err := s.Load(c)
		if err != nil || img.Config.Architecture != tt.arch {
			t.Errorf("Load(%s): %v", tt.p, err)
		}
	}
	if _, err := s.Load(im); err == nil || !strings.Contains(err.Error(), "multi-platform image (linux/amd64, linux/arm64)") {
		t.Errorf("Load of the index: %v", err)
	}
	imgs, err := s.LoadAll(im)
	if err != nil || len(imgs) != 2 {
		t.Errorf("LoadAll: %d, %v", len(imgs), err)
	}

	// FROM app:1 for arm64 serves the arm64 image, pinned by its manifest.
	src := &Source{Store: s, Remote: &fakeRemote{}}
	pinned, _, _, err := src.ResolveImageConfig(ctx, "app:1", llb.Platform{OS: "linux", Architecture: "arm64"})
	if err != nil || !strings.HasSuffix(pinned, "@"+st.Platforms[1].Manifest.Digest.String()) {
		t.Errorf("FROM app:1 for arm64: %s %v", pinned, err)
	}
	if r, err := src.Resolve(ctx, pinned, llb.Platform{OS: "linux", Architecture: "arm64"}); err != nil || r.ManifestDigest.String() != st.Platforms[1].Manifest.Digest.String() {
		t.Errorf("pinned arm64 manifest: %v", err)
	}

	keep, err := s.Referenced()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []digest.Digest{digest.Digest(st.Manifest.Digest.String()), amd.Layers[0].Digest, arm.Layers[0].Digest,
		digest.Digest(st.Platforms[0].Manifest.Digest.String()), st.Platforms[1].ID} {
		if !keep[d] {
			t.Errorf("Referenced lacks %s", d)
		}
	}
	if _, err := s.Remove("app:1", false, nil); err != nil {
		t.Fatal(err)
	}
	r, err := s.Remove("app:2", false, nil)
	if err != nil || r.Deleted != st.ID {
		t.Errorf("rmi of the last name: %+v %v", r, err)
	}
}

// TestHistoryOfIndex: the history of a multi-platform image is its
// platform image's, the host's unless a platform is asked for, under the
// multi-platform image's ID.
func TestHistoryOfIndex(t *testing.T) {
	t.Parallel()
	if llb.HostPlatform().Architecture != "amd64" {
		t.Skip("the default platform below is amd64")
	}
	s, blobs, _ := open(t)
	amd := testImage(t, blobs, "amd64", time.Unix(10, 0))
	amd.Config.History = []v1.History{{CreatedBy: "amd64 layer"}}
	arm := testImage(t, blobs, "arm64", time.Unix(20, 0))
	arm.Config.Architecture = "arm64"
	arm.Config.History = []v1.History{{CreatedBy: "arm64 layer"}}
	st, err := s.PutIndex(context.Background(), []*exporter.Image{amd, arm}, []string{"app:1"})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[llb.Platform]string{{}: "amd64 layer", {OS: "linux", Architecture: "arm64"}: "arm64 layer"} {
		id, hist, err := s.History("app:1", p)
		if err != nil || id != st.ID || len(hist) != 1 || hist[0].CreatedBy != want || hist[0].Size == 0 {
			t.Errorf("History(%s): %s %+v %v, want %q under %s", p, id, hist, err, want, st.ID)
		}
	}
	if _, _, err := s.History("app:1", llb.Platform{OS: "linux", Architecture: "s390x"}); err == nil || !strings.Contains(err.Error(), "no image for platform linux/s390x") {
		t.Errorf("History of a missing platform: %v", err)
	}
}
