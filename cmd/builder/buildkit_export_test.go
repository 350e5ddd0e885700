package main

// Ports of BuildKit's frontend/dockerfile/dockerfile_export_test.go (and
// testOCILayoutMultiname of dockerfile_image_test.go) that check exporter
// output beyond the one image the golden suite reads.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// buildOutputs builds the Dockerfile text df with the files of ctx and the
// given outputs and platform, from scratch (no base image needed).
func buildOutputs(t *testing.T, df string, ctx map[string]string, platform string, outputs ...Output) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, ctx)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	ctxt, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	o := BuildOptions{ContextDir: dir, Root: t.TempDir(), Progress: "plain", Platform: platform, Outputs: outputs}
	if err := Build(ctxt, o, &progress); err != nil {
		t.Fatalf("build: %v\nprogress:\n%s", err, progress.String())
	}
}

// tarFiles reads the regular files of the tar at path, by name without
// a leading "./".
func tarFiles(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string]string{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimPrefix(hdr.Name, "./")] = string(data)
		}
	}
}

// TestBuildKitTarExporter ports testTarExporterBasic and
// testTarExporterMulti: the tar exporter writes the files of the image,
// and with several platforms one <os>_<arch>/ directory per platform.
func TestBuildKitTarExporter(t *testing.T) {
	requireRootOverlay(t)
	t.Run("basic", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out.tar")
		buildOutputs(t, "FROM scratch\nCOPY foo foo\n", map[string]string{"foo": "data"}, "",
			Output{Type: "tar", Dest: out, Attrs: map[string]string{}})
		if got := tarFiles(t, out)["foo"]; got != "data" {
			t.Errorf("foo = %q, want %q", got, "data")
		}
	})
	const multi = `FROM scratch AS stage-linux
COPY foo forlinux
FROM scratch AS stage-darwin
COPY bar fordarwin
FROM stage-$TARGETOS
`
	ctx := map[string]string{"foo": "data", "bar": "data2"}
	t.Run("multi default platform", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out.tar")
		buildOutputs(t, multi, ctx, "", Output{Type: "tar", Dest: out, Attrs: map[string]string{}})
		if got := tarFiles(t, out)["forlinux"]; got != "data" {
			t.Errorf("forlinux = %q, want %q", got, "data")
		}
	})
	t.Run("multi platform", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out.tar")
		buildOutputs(t, multi, ctx, "linux/amd64,darwin/amd64", Output{Type: "tar", Dest: out, Attrs: map[string]string{}})
		files := tarFiles(t, out)
		for name, want := range map[string]string{"linux_amd64/forlinux": "data", "darwin_amd64/fordarwin": "data2"} {
			if files[name] != want {
				t.Errorf("%s = %q, want %q (files %v)", name, files[name], want, files)
			}
		}
	})
}

// TestBuildKitExportMultiPlatform ports testExportMultiPlatform: per
// platform directories of the local exporter (linux/arm is normalized to
// linux/arm/v7), and an OCI index with one manifest per platform, in
// order, each with its os, architecture, label and layer.
func TestBuildKitExportMultiPlatform(t *testing.T) {
	requireRootOverlay(t)
	const df = `FROM scratch
ARG TARGETARCH
ARG TARGETPLATFORM
LABEL target=$TARGETPLATFORM
COPY arch-$TARGETARCH whoami
`
	ctx := map[string]string{"arch-arm": "i am arm", "arch-amd64": "i am amd64", "arch-s390x": "i am s390x", "arch-ppc64le": "i am ppc64le"}

	local := filepath.Join(t.TempDir(), "local")
	buildOutputs(t, df, ctx, "windows/amd64,linux/arm,linux/s390x", Output{Type: "local", Dest: local, Attrs: map[string]string{}})
	for name, want := range map[string]string{"windows_amd64/whoami": "i am amd64", "linux_arm_v7/whoami": "i am arm", "linux_s390x/whoami": "i am s390x"} {
		got, err := os.ReadFile(filepath.Join(local, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q (%v), want %q", name, got, err, want)
		}
	}

	out := filepath.Join(t.TempDir(), "out.tar")
	buildOutputs(t, df, ctx, "windows/amd64,linux/arm/v6,linux/ppc64le", Output{Type: "oci", Dest: out, Attrs: map[string]string{}})
	idx := readOCIIndexTar(t, out)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 3 {
		t.Fatalf("index has %d manifests, want 3", len(im.Manifests))
	}
	for i, exp := range []struct{ p, os, arch, dt string }{
		{"windows/amd64", "windows", "amd64", "i am amd64"},
		{"linux/arm/v6", "linux", "arm", "i am arm"},
		{"linux/ppc64le", "linux", "ppc64le", "i am ppc64le"},
	} {
		d := im.Manifests[i]
		if d.Platform == nil || d.Platform.String() != exp.p {
			t.Errorf("manifest %d: platform %v, want %s", i, d.Platform, exp.p)
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != exp.os || cf.Architecture != exp.arch || cf.Config.Labels["target"] != exp.p {
			t.Errorf("%s: os %q arch %q label %q", exp.p, cf.OS, cf.Architecture, cf.Config.Labels["target"])
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != 1 {
			t.Errorf("%s: %d layers, want 1", exp.p, len(layers))
			continue
		}
		if got := imageFiles(t, img)["whoami"]; got != exp.dt {
			t.Errorf("%s: whoami = %q, want %q", exp.p, got, exp.dt)
		}
	}
}

// readOCIIndexTar extracts an OCI layout tarball and returns the index its
// index.json points to (a multi-platform build's image index).
func readOCIIndexTar(t *testing.T, path string) v1.ImageIndex {
	t.Helper()
	dir := t.TempDir()
	if _, err := extractTar(path, dir); err != nil {
		t.Fatal(err)
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json has %d manifests, want 1 (the image index)", len(im.Manifests))
	}
	idx, err := top.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// TestBuildKitOCILayoutMultiname ports testOCILayoutMultiname
// (dockerfile_image_test.go): type=oci with two names writes one
// index.json entry per name, for the same manifest, as a directory
// (tar=false) and as a tar.
func TestBuildKitOCILayoutMultiname(t *testing.T) {
	requireRootOverlay(t)
	const df = "FROM scratch\nCOPY <<EOF /foo\nhello\nEOF\n"
	validate := func(t *testing.T, data []byte) {
		t.Helper()
		var idx v1.IndexManifest
		if err := json.Unmarshal(data, &idx); err != nil {
			t.Fatalf("index.json: %v\n%s", err, data)
		}
		if len(idx.Manifests) != 2 {
			t.Fatalf("index.json has %d manifests, want 2:\n%s", len(idx.Manifests), data)
		}
		a, b := idx.Manifests[0], idx.Manifests[1]
		if a.Digest != b.Digest || a.MediaType != b.MediaType || a.Size != b.Size || !reflect.DeepEqual(a.Platform, b.Platform) {
			t.Errorf("the two entries differ:\n%s", data)
		}
		for i, tag := range []string{"tag1", "tag2"} {
			ann := idx.Manifests[i].Annotations
			if ann["io.containerd.image.name"] != "docker.io/org/repo:"+tag || ann["org.opencontainers.image.ref.name"] != tag {
				t.Errorf("entry %d: annotations %v, want docker.io/org/repo:%s and %s", i, ann, tag, tag)
			}
		}
	}
	dest := filepath.Join(t.TempDir(), "layout")
	buildOutputs(t, df, nil, "", Output{Type: "oci", Dest: dest, Attrs: map[string]string{"tar": "false", "name": "org/repo:tag1,org/repo:tag2"}})
	data, err := os.ReadFile(filepath.Join(dest, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	validate(t, data)

	out := filepath.Join(t.TempDir(), "out.tar")
	buildOutputs(t, df, nil, "", Output{Type: "oci", Dest: out, Attrs: map[string]string{"name": "org/repo:tag1,org/repo:tag2"}})
	validate(t, []byte(tarFiles(t, out)["index.json"]))
}
