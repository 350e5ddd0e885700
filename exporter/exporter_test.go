package exporter

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/buildtest"
	"github.com/builderdev/builder/internal/registrytest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	digest "github.com/opencontainers/go-digest"
)

var created = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func newStore(t *testing.T) *cache.BlobStore {
	t.Helper()
	s, err := cache.OpenBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// putLayer stores a layer holding files (name -> content) and returns it.
func putLayer(t *testing.T, blobs *cache.BlobStore, files map[string]string, compress bool) cache.Layer {
	t.Helper()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	for _, n := range sortStrings(names) {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: created, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, files[n])
	}
	tw.Close()
	diffID := digest.FromBytes(tarBuf.Bytes())
	blob, mt := tarBuf.Bytes(), types.OCIUncompressedLayer
	if compress {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(tarBuf.Bytes())
		zw.Close()
		blob, mt = gz.Bytes(), types.OCILayer
	}
	d, n, err := blobs.Put(context.Background(), bytes.NewReader(blob), "", -1)
	if err != nil {
		t.Fatal(err)
	}
	return cache.Layer{MediaType: string(mt), Digest: d, Size: n, DiffID: diffID}
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

// busyboxLayers stores the layers of registrytest's busybox image.
func busyboxLayers(t *testing.T, blobs *cache.BlobStore) []cache.Layer {
	t.Helper()
	img, err := registrytest.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []cache.Layer
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		d, n, err := blobs.Put(context.Background(), rc, "", -1)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		diff, _ := l.DiffID()
		mt, _ := l.MediaType()
		out = append(out, cache.Layer{MediaType: string(mt), Digest: d, Size: n, DiffID: digest.Digest(diff.String())})
	}
	return out
}

// testImage is busybox plus an app layer (gzip) and a config layer
// (gzip unless asked), with Dockerfile-like config and history.
func testImage(t *testing.T) *Image { return testImageWith(t, true) }

// testImageWith makes the last layer uncompressed unless gzipLast.
func testImageWith(t *testing.T, gzipLast bool) *Image {
	t.Helper()
	blobs := newStore(t)
	layers := busyboxLayers(t, blobs)
	layers = append(layers,
		putLayer(t, blobs, map[string]string{"app/hello.txt": "hello\n", "app/run.sh": "echo hi\n"}, true),
		putLayer(t, blobs, map[string]string{"etc/app.conf": "x=1\n"}, gzipLast),
	)
	return &Image{
		Blobs:  blobs,
		Layers: layers,
		Config: v1.ConfigFile{
			Created:      v1.Time{Time: created},
			Architecture: "amd64",
			OS:           "linux",
			Config: v1.Config{
				Env:        []string{"PATH=" + registrytest.DefaultPath, "A=b"},
				Cmd:        []string{"/app/run.sh"},
				WorkingDir: "/app",
				User:       "app",
				Labels:     map[string]string{"org.example": "yes"},
			},
			History: []v1.History{
				{Created: v1.Time{Time: created}, CreatedBy: "ADD busybox /"},
				{Created: v1.Time{Time: created}, CreatedBy: "ENV A=b", EmptyLayer: true},
				{Created: v1.Time{Time: created}, CreatedBy: "COPY app /app"},
				{Created: v1.Time{Time: created}, CreatedBy: "COPY app.conf /etc/"},
				{Created: v1.Time{Time: created}, CreatedBy: `CMD ["/app/run.sh"]`, EmptyLayer: true},
			},
		},
	}
}

func TestV1(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		opts               []Option
		gzipLast           bool
		manifest, config   types.MediaType
		gzipLayer, rawLayr types.MediaType
	}{
		{"oci", nil, true, types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer, types.OCILayer},
		{"docker", []Option{WithDockerMediaTypes()}, true, types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer, types.DockerLayer},
		{"oci uncompressed", nil, false, types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer, types.OCIUncompressedLayer},
		{"docker uncompressed", []Option{WithDockerMediaTypes()}, false, types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer, types.DockerUncompressedLayer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			img := testImageWith(t, tt.gzipLast)
			v, err := img.V1(tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			// validate reads every layer as gzip; with an uncompressed
			// layer check the structure and the diff IDs separately.
			var vopts []validate.Option
			if !tt.gzipLast {
				vopts = append(vopts, validate.Fast)
				checkDiffIDs(t, v)
			}
			if err := validate.Image(v, vopts...); err != nil {
				t.Fatalf("validate: %v", err)
			}
			m, err := v.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != tt.manifest || m.Config.MediaType != tt.config {
				t.Errorf("media types %s, %s", m.MediaType, m.Config.MediaType)
			}
			want := []types.MediaType{tt.gzipLayer, tt.gzipLayer, tt.rawLayr}
			for i, l := range m.Layers {
				if l.MediaType != want[i] || l.Digest.String() != img.Layers[i].Digest.String() || l.Size != img.Layers[i].Size {
					t.Errorf("layer %d: %+v", i, l)
				}
			}
			checkConfigJSON(t, img, v)
		})
	}
}

// checkDiffIDs reads every layer uncompressed and checks its diff ID.
func checkDiffIDs(t *testing.T, v v1.Image) {
	t.Helper()
	ls, err := v.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := l.DiffID(); got != want {
			t.Errorf("layer %d: diff id %s, content %s", i, want, got)
		}
	}
}

// checkConfigJSON checks the config has the fields Docker and BuildKit
// write.
func checkConfigJSON(t *testing.T, img *Image, v v1.Image) {
	t.Helper()
	raw, err := v.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Created      *time.Time `json:"created"`
		Architecture string     `json:"architecture"`
		OS           string     `json:"os"`
		Config       struct {
			Env        []string
			Cmd        []string
			WorkingDir string
			User       string
			Labels     map[string]string
		} `json:"config"`
		RootFS struct {
			Type    string   `json:"type"`
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
		History []map[string]any `json:"history"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if c.Created == nil || !c.Created.Equal(created) || c.Architecture != "amd64" || c.OS != "linux" {
		t.Errorf("config header: %s", raw)
	}
	if c.Config.WorkingDir != "/app" || c.Config.User != "app" || c.Config.Labels["org.example"] != "yes" || len(c.Config.Env) != 2 || c.Config.Cmd[0] != "/app/run.sh" {
		t.Errorf("config.config: %+v", c.Config)
	}
	if c.RootFS.Type != "layers" || len(c.RootFS.DiffIDs) != len(img.Layers) {
		t.Fatalf("rootfs: %+v", c.RootFS)
	}
	for i, d := range c.RootFS.DiffIDs {
		if d != img.Layers[i].DiffID.String() {
			t.Errorf("diff_ids[%d] = %s", i, d)
		}
	}
	if len(c.History) != len(img.Config.History) {
		t.Errorf("history: %v", c.History)
	}
	for _, h := range c.History {
		if _, ok := h["created_by"]; !ok {
			t.Errorf("history entry without created_by: %v", h)
		}
	}
}

func TestHistory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		history []v1.History
		want    int // history entries; -1 for an error
	}{
		{"none", nil, 3},
		{"complete", []v1.History{{CreatedBy: "a"}, {CreatedBy: "b", EmptyLayer: true}, {CreatedBy: "c"}, {CreatedBy: "d"}}, 4},
		{"short", []v1.History{{CreatedBy: "a"}}, 3},
		{"too many", []v1.History{{CreatedBy: "a"}, {CreatedBy: "b"}, {CreatedBy: "c"}, {CreatedBy: "d"}}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			img := testImage(t)
			img.Config.History = tt.history
			raw, err := img.ConfigJSON()
			if tt.want < 0 {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if len(cf.History) != tt.want {
				t.Errorf("%d history entries, want %d", len(cf.History), tt.want)
			}
			if len(img.Config.History) != len(tt.history) {
				t.Error("ConfigJSON changed the caller's config")
			}
		})
	}
}

func TestNormalizeName(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"x", "docker.io/library/x:latest"},
		{"x:1", "docker.io/library/x:1"},
		{"docker.io/library/x:2", "docker.io/library/x:2"},
		{"index.docker.io/me/x", "docker.io/me/x:latest"},
		{"localhost:5000/a/b:c", "localhost:5000/a/b:c"},
		{"x@sha256:" + strings.Repeat("a", 64), ""},
		{"UPPER", ""},
	}
	for _, tt := range tests {
		got, err := NormalizeName(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("NormalizeName(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func writeOCI(t *testing.T, img *Image, names []string) (string, v1.Descriptor) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := WriteOCI(context.Background(), f, img, names)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p, desc
}

// untar extracts the OCI tar at p into a new directory and returns the
// names of its entries, checking that every mtime is the epoch.
func untar(t *testing.T, p string) (dir string, names []string) {
	t.Helper()
	dir = t.TempDir()
	hdrs, err := buildtest.ExtractTar(p, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hdrs {
		names = append(names, h.Name)
		if !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: mtime %v", h.Name, h.ModTime)
		}
	}
	return dir, names
}

func TestWriteOCI(t *testing.T) {
	img := testImage(t)
	names := []string{"x", "localhost:5000/y:2", "docker.io/library/x:latest"}
	p, desc := writeOCI(t, img, names)

	v, _ := img.V1()
	wantDigest, _ := v.Digest()
	if desc.Digest != wantDigest || desc.MediaType != types.OCIManifestSchema1 || len(desc.Annotations) != 0 {
		t.Errorf("descriptor %+v, want digest %s", desc, wantDigest)
	}

	// Deterministic.
	p2, _ := writeOCI(t, img, names)
	b1, _ := os.ReadFile(p)
	b2, _ := os.ReadFile(p2)
	if !bytes.Equal(b1, b2) {
		t.Error("two writes of the same image differ")
	}

	dir, entries := untar(t, p)
	// blobs/, blobs/sha256/, config, manifest, 3 layers, index.json, oci-layout
	if len(entries) != 9 || !reflect.DeepEqual(entries, sortStrings(append([]string(nil), entries...))) {
		t.Errorf("entries: %v", entries)
	}

	var idx v1.IndexManifest
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	wantAnn := []map[string]string{
		{AnnotationImageName: "docker.io/library/x:latest", AnnotationRefName: "latest"},
		{AnnotationImageName: "localhost:5000/y:2", AnnotationRefName: "2"},
	}
	if idx.MediaType != types.OCIImageIndex || len(idx.Manifests) != len(wantAnn) {
		t.Fatalf("index.json: %s", raw)
	}
	for i, m := range idx.Manifests {
		if m.Digest != wantDigest || !reflect.DeepEqual(m.Annotations, wantAnn[i]) {
			t.Errorf("manifests[%d] = %+v", i, m)
		}
	}

	// go-containerregistry reads it back as a valid image.
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	back, err := lp.Image(wantDigest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(back); err != nil {
		t.Fatalf("validate: %v", err)
	}

	t.Run("skopeo", func(t *testing.T) {
		requireTool(t, "skopeo")
		out, err := exec.Command("skopeo", "inspect", "oci-archive:"+p+":latest").CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo inspect: %v\n%s", err, out)
		}
		var info struct {
			Digest       string
			Architecture string
			Os           string
			Layers       []string
			Env          []string
		}
		if err := json.Unmarshal(out, &info); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if info.Digest != wantDigest.String() || info.Architecture != "amd64" || info.Os != "linux" || len(info.Layers) != 3 || len(info.Env) != 2 {
			t.Errorf("skopeo sees %+v", info)
		}
	})

	t.Run("umoci", func(t *testing.T) {
		requireTool(t, "umoci")
		bundle := filepath.Join(t.TempDir(), "bundle")
		args := []string{"unpack", "--image", dir + ":latest", bundle}
		if os.Geteuid() != 0 {
			args = append([]string{"unpack", "--rootless"}, args[1:]...)
		}
		if out, err := exec.Command("umoci", args...).CombinedOutput(); err != nil {
			t.Fatalf("umoci unpack: %v\n%s", err, out)
		}
		rootfs := filepath.Join(bundle, "rootfs")
		if l, err := os.Readlink(filepath.Join(rootfs, "bin/sh")); err != nil || l != "/bin/busybox" {
			t.Errorf("bin/sh -> %q, %v", l, err)
		}
		for f, want := range map[string]string{"app/hello.txt": "hello\n", "etc/app.conf": "x=1\n"} {
			if b, err := os.ReadFile(filepath.Join(rootfs, f)); err != nil || string(b) != want {
				t.Errorf("%s = %q, %v", f, b, err)
			}
		}
		if b, err := os.ReadFile(filepath.Join(rootfs, "etc/passwd")); err != nil || !strings.Contains(string(b), "app:x:1000:1000") {
			t.Errorf("etc/passwd = %q, %v", b, err)
		}
		// umoci turns the image config into the runtime config.
		spec, err := os.ReadFile(filepath.Join(bundle, "config.json"))
		if err != nil || !strings.Contains(string(spec), `"/app/run.sh"`) || !strings.Contains(string(spec), `"cwd": "/app"`) {
			t.Errorf("runtime config: %v\n%s", err, spec)
		}
	})
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
}

func TestWriteOCINoName(t *testing.T) {
	t.Parallel()
	img := testImage(t)
	p, desc := writeOCI(t, img, nil)
	dir, _ := untar(t, p)
	raw, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != desc.Digest || idx.Manifests[0].Annotations != nil {
		t.Fatalf("index.json: %s", raw)
	}
	requireTool(t, "skopeo")
	if out, err := exec.Command("skopeo", "inspect", "oci-archive:"+p).CombinedOutput(); err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
}

func TestWriteOCIBadStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		break_ func(t *testing.T, img *Image)
		want   string
	}{
		{"missing blob", func(t *testing.T, img *Image) {
			if err := img.Blobs.Delete(img.Layers[1].Digest); err != nil {
				t.Fatal(err)
			}
		}, "not found"},
		{"corrupt blob", func(t *testing.T, img *Image) {
			p := img.Blobs.Path(img.Layers[1].Digest)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0xff
			os.Chmod(p, 0o644)
			if err := os.WriteFile(p, b, 0o444); err != nil {
				t.Fatal(err)
			}
		}, "does not match its digest"},
		{"wrong size", func(t *testing.T, img *Image) { img.Layers[1].Size++ }, "bytes"},
		{"bad name", func(t *testing.T, img *Image) {}, "image name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			img := testImage(t)
			tt.break_(t, img)
			names := []string{"x"}
			if tt.name == "bad name" {
				names = []string{"Bad Name"}
			}
			_, err := WriteOCI(context.Background(), io.Discard, img, names)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if tt.name == "missing blob" && !errors.Is(err, cache.ErrNotFound) {
				t.Errorf("error %v does not wrap cache.ErrNotFound", err)
			}
		})
	}
}

func TestWriteOCICanceled(t *testing.T) {
	t.Parallel()
	img := testImage(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := WriteOCI(ctx, io.Discard, img, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestValidateReference(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		wantErr string // "" = valid
	}{
		{"x", ""},
		{"x:1.0-rc_1", ""},
		{"library/x", ""},
		{"my-org/my__app.v2/a-b", ""},
		{"localhost/x", ""},
		{"localhost:5000/a/b:c", ""},
		{"registry.example.com:443/team/app:v1", ""},
		{"[::1]:5000/x", ""},
		{"UPPERHOST/x", ""}, // an upper-case first component is a registry
		{"x@sha256:" + strings.Repeat("a", 64), ""},
		{"../x", "invalid reference format"},
		{"../../y", "invalid reference format"},
		{"./x", "invalid reference format"},
		{"x/../y", "invalid reference format"},
		{"-x", "invalid reference format"},
		{"x-", "invalid reference format"},
		{"a//b", "invalid reference format"},
		{"x:", "invalid reference format"},
		{"x:-tag", "invalid reference format"},
		{":tag", "invalid reference format"},
		{"x y", "invalid reference format"},
		{"", "empty name"},
		{"Upper", "repository name (Upper) must be lowercase"},
		{"localhost:5000/Team/x", "repository name (Team/x) must be lowercase"},
		{strings.Repeat("a", 64), "64-byte hexadecimal"},
		{strings.Repeat("a", 256), "not be more than 255"},
		{"x:" + strings.Repeat("t", 129), "invalid reference format"},
	}
	for _, tt := range tests {
		err := ValidateReference(tt.in)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("ValidateReference(%q) = %v, want nil", tt.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidReference) {
			t.Errorf("ValidateReference(%q) = %v, want an error with %q", tt.in, err, tt.wantErr)
		}
	}
	for _, bad := range []string{"../x", "a//b"} {
		if got, err := NormalizeName(bad); err == nil {
			t.Errorf("NormalizeName(%q) = %q, want an error", bad, got)
		}
	}
}
