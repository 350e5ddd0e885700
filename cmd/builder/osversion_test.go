package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/builderdev/builder/internal/registrytest"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// buildOSVersion builds df for platform with a fresh root and the given
// outputs; it fails the test on an error.
func buildOSVersion(t *testing.T, df, platform, target string, outputs []Output) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	err := Build(context.Background(), BuildOptions{
		ContextDir: dir, Root: filepath.Join(t.TempDir(), "root"), Progress: "plain",
		Platform: platform, Target: target, BuildArgs: map[string]string{}, Outputs: outputs,
	}, &progress)
	if err != nil {
		t.Fatalf("build --platform %s: %v\n%s", platform, err, progress.String())
	}
}

// pushedConfigs reads the configs of the images ref names (an index's, in
// its order, or the one image's).
func pushedConfigs(t *testing.T, ref string) ([]*v1.ConfigFile, []*v1.Platform) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatal(err)
	}
	var imgs []v1.Image
	var plats []*v1.Platform
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range m.Manifests {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			imgs, plats = append(imgs, img), append(plats, d.Platform)
		}
	} else {
		img, err := desc.Image()
		if err != nil {
			t.Fatal(err)
		}
		imgs, plats = append(imgs, img), append(plats, nil)
	}
	var cfgs []*v1.ConfigFile
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, cf)
	}
	return cfgs, plats
}

func readLocal(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBuildKitPlatformWithOSVersion ports BuildKit's
// testPlatformWithOSVersion (dockerfile_platform_test.go): platforms
// written os(osversion)/arch give TARGETOSVERSION and TARGETPLATFORM with
// the version, the images' os.version, per-platform directories named
// after them, and FROM picks the index entry of the requested version.
func TestBuildKitPlatformWithOSVersion(t *testing.T) {
	requireRootOverlay(t)
	host := registrytest.NewInProcess(t)
	target := host + "/buildkit/testplatformwithosversion:latest"
	df := "FROM " + target + " AS reg\n\nFROM scratch AS base\nARG TARGETOSVERSION\nCOPY <<EOF /osversion\n${TARGETOSVERSION}\nEOF\nARG TARGETPLATFORM\nCOPY <<EOF /targetplatform\n${TARGETPLATFORM}\nEOF\n"
	p1, p2 := "windows(1.2.3)/bar", "windows(1.1.0)/bar"
	dest := t.TempDir()
	buildOSVersion(t, df, p1+","+p2, "base", []Output{
		{Type: "local", Dest: dest, Attrs: map[string]string{}},
		{Type: "image", Attrs: map[string]string{"name": target, "push": "true"}},
	})
	cfgs, plats := pushedConfigs(t, target)
	if len(cfgs) != 2 || cfgs[0].OSVersion != "1.2.3" || cfgs[1].OSVersion != "1.1.0" {
		t.Fatalf("pushed configs %+v, want os.version 1.2.3 and 1.1.0", cfgs)
	}
	if plats[0] == nil || plats[0].OSVersion != "1.2.3" || plats[1] == nil || plats[1].OSVersion != "1.1.0" {
		t.Errorf("index platforms %+v %+v, want os.version 1.2.3 and 1.1.0", plats[0], plats[1])
	}
	for _, tc := range []struct{ dir, version, platform string }{
		{"windows(1.2.3)_bar", "1.2.3", p1},
		{"windows(1.1.0)_bar", "1.1.0", p2},
	} {
		if got := readLocal(t, dest, tc.dir+"/osversion"); got != tc.version+"\n" {
			t.Errorf("%s/osversion = %q, want %q", tc.dir, got, tc.version+"\n")
		}
		if got := readLocal(t, dest, tc.dir+"/targetplatform"); got != tc.platform+"\n" {
			t.Errorf("%s/targetplatform = %q, want %q", tc.dir, got, tc.platform+"\n")
		}
	}
	// FROM the pushed index selects the entry of the requested version.
	for _, tc := range []struct{ platform, version string }{{p1, "1.2.3"}, {p2, "1.1.0"}} {
		dest := t.TempDir()
		buildOSVersion(t, df, tc.platform, "reg", []Output{{Type: "local", Dest: dest, Attrs: map[string]string{}}})
		if got := readLocal(t, dest, "osversion"); got != tc.version+"\n" {
			t.Errorf("--platform %s --target reg: osversion = %q, want %q", tc.platform, got, tc.version+"\n")
		}
	}
}

// TestBuildKitMaintainBaseOSVersion ports BuildKit's
// testMaintainBaseOSVersion: an image built for
// windows(10.0.20348.1006)/amd64 has that os.version, and an image built
// FROM it for windows/amd64 keeps it.
func TestBuildKitMaintainBaseOSVersion(t *testing.T) {
	requireRootOverlay(t)
	host := registrytest.NewInProcess(t)
	target := host + "/buildkit/testplatformwithosversion-1:latest"
	buildOSVersion(t, "FROM scratch\nARG TARGETPLATFORM\nCOPY <<EOF /platform\n${TARGETPLATFORM}\nEOF\n",
		"windows(10.0.20348.1006)/amd64", "", []Output{{Type: "image", Attrs: map[string]string{"name": target, "push": "true"}}})
	cfgs, _ := pushedConfigs(t, target)
	if len(cfgs) != 1 || cfgs[0].OSVersion != "10.0.20348.1006" {
		t.Fatalf("pushed configs %+v, want one with os.version 10.0.20348.1006", cfgs)
	}
	target2 := host + "/buildkit/testplatformwithosversion-2:latest"
	buildOSVersion(t, "FROM "+target+"\nCOPY <<EOF /other\nhello\nEOF\n",
		"windows/amd64", "", []Output{{Type: "image", Attrs: map[string]string{"name": target2, "push": "true"}}})
	cfgs, _ = pushedConfigs(t, target2)
	if len(cfgs) != 1 || cfgs[0].OSVersion != "10.0.20348.1006" {
		t.Fatalf("pushed configs %+v, want one with os.version 10.0.20348.1006 (kept from the base)", cfgs)
	}
}
