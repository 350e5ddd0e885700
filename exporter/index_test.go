package exporter

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// twoPlatforms is testImage for linux/amd64 and linux/arm/v7.
func twoPlatforms(t *testing.T) []*Image {
	amd := testImage(t)
	arm := *amd
	arm.Config = *amd.Config.DeepCopy()
	arm.Config.Architecture, arm.Config.Variant = "arm", "v7"
	return []*Image{amd, &arm}
}

func TestIndex(t *testing.T) {
	t.Parallel()
	imgs := twoPlatforms(t)
	for _, tt := range []struct {
		name          string
		opt           []Option
		index, single types.MediaType
	}{
		{"oci", nil, types.OCIImageIndex, types.OCIManifestSchema1},
		{"docker", []Option{WithDockerMediaTypes()}, types.DockerManifestList, types.DockerManifestSchema2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			idx, err := IndexV1(imgs, tt.opt...)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Index(idx); err != nil {
				t.Fatalf("validate.Index: %v", err)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if im.MediaType != tt.index || len(im.Manifests) != 2 {
				t.Fatalf("index %s with %d manifests", im.MediaType, len(im.Manifests))
			}
			for i, want := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm", Variant: "v7"}} {
				d := im.Manifests[i]
				if d.Platform == nil || !d.Platform.Equals(want) || d.MediaType != tt.single || d.ArtifactType != "" || d.Annotations != nil {
					t.Errorf("manifest %d: %s %v, want %s %v", i, d.MediaType, d.Platform, tt.single, want)
				}
			}

			// The OCI layout (tar and directory) names the same index.
			var buf bytes.Buffer
			desc, err := WriteOCIIndex(context.Background(), &buf, imgs, []string{"example.com/app:1"}, tt.opt...)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := idx.Digest()
			if desc.Digest != want || desc.MediaType != tt.index {
				t.Errorf("WriteOCIIndex: %s %s, want %s %s", desc.MediaType, desc.Digest, tt.index, want)
			}
			dir := filepath.Join(t.TempDir(), "layout")
			if _, err := WriteOCIIndexDir(context.Background(), dir, imgs, []string{"example.com/app:1"}, tt.opt...); err != nil {
				t.Fatal(err)
			}
			lp, err := layout.ImageIndexFromPath(dir)
			if err != nil {
				t.Fatal(err)
			}
			top, err := lp.IndexManifest()
			if err != nil || len(top.Manifests) != 1 || top.Manifests[0].Digest != want || top.Manifests[0].Annotations[AnnotationImageName] != "example.com/app:1" {
				t.Fatalf("index.json: %v %+v", err, top)
			}
			inner, err := lp.ImageIndex(want)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Index(inner); err != nil {
				t.Errorf("layout index: %v", err)
			}
		})
	}
}

func TestWriteLocalIndex(t *testing.T) {
	t.Parallel()
	imgs := twoPlatforms(t)
	dir := t.TempDir()
	if err := WriteLocalIndex(context.Background(), dir, imgs); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"linux_amd64", "linux_arm_v7"} {
		if b, err := os.ReadFile(filepath.Join(dir, sub, "app", "hello.txt")); err != nil || string(b) != "hello\n" {
			t.Errorf("%s/app/hello.txt: %q %v", sub, b, err)
		}
	}
}
