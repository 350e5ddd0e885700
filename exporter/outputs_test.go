package exporter

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/builderdev/builder/cache"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
)

func TestWriteDocker(t *testing.T) {
	img := testImage(t)
	p := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := WriteDocker(context.Background(), f, img, []string{"x", "localhost:5000/y:2", "docker.io/library/x:latest"})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if desc.MediaType != types.DockerManifestSchema2 {
		t.Errorf("descriptor %+v", desc)
	}
	tag, _ := name.NewTag("localhost:5000/y:2")
	v, err := tarball.ImageFromPath(p, &tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(v); err != nil {
		t.Errorf("validate: %v", err)
	}
	cd, _ := v.ConfigName()
	v2, _ := img.V1()
	want, _ := v2.ConfigName()
	if cd != want {
		t.Errorf("config %s, want %s", cd, want)
	}
	entries := tarEntries(t, p)
	var mf tarball.Manifest
	if err := json.Unmarshal(entries["manifest.json"], &mf); err != nil {
		t.Fatal(err)
	}
	if len(mf) != 1 || !reflect.DeepEqual(mf[0].RepoTags, []string{"x:latest", "localhost:5000/y:2"}) || len(mf[0].Layers) != 3 {
		t.Errorf("manifest.json: %s", entries["manifest.json"])
	}
	var repos map[string]map[string]string
	if err := json.Unmarshal(entries["repositories"], &repos); err != nil || repos["x"]["latest"] != want.Hex {
		t.Errorf("repositories: %s", entries["repositories"])
	}
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Log("skopeo not installed: skipping the skopeo checks")
		return
	}
	if out, err := exec.Command("skopeo", "inspect", "docker-archive:"+p).CombinedOutput(); err != nil || !strings.Contains(string(out), want.String()[7:]) && !strings.Contains(string(out), "Layers") {
		t.Errorf("skopeo inspect: %v\n%s", err, out)
	}
	dst := filepath.Join(t.TempDir(), "oci")
	if out, err := exec.Command("skopeo", "copy", "docker-archive:"+p, "oci:"+dst+":x").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	ii, err := layout.ImageIndexFromPath(dst)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := ii.IndexManifest()
	copied, err := ii.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(copied); err != nil {
		t.Errorf("copied image: %v", err)
	}
	if _, err := exec.LookPath("podman"); err == nil {
		// Storage in the test's temp dirs, so the host's stays untouched.
		st := t.TempDir()
		podman := exec.Command("podman", "--root", filepath.Join(st, "root"), "--runroot", filepath.Join(st, "run"),
			"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none", "load", "-i", p)
		if out, err := podman.CombinedOutput(); err != nil || !strings.Contains(string(out), "localhost:5000/y:2") {
			t.Errorf("podman load: %v\n%s", err, out)
		}
	}
}

// tarEntries reads the regular files of the tar at p.
func tarEntries(t *testing.T, p string) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		var buf bytes.Buffer
		buf.ReadFrom(tr)
		out[h.Name] = buf.Bytes()
	}
	return out
}

func TestWriteOCIDir(t *testing.T) {
	t.Parallel()
	img := testImage(t)
	dir := filepath.Join(t.TempDir(), "layout")
	for range 2 { // a second write over the same directory is fine
		desc, err := WriteOCIDir(context.Background(), dir, img, []string{"x:1"}, WithDockerMediaTypes())
		if err != nil {
			t.Fatal(err)
		}
		if desc.MediaType != types.DockerManifestSchema2 {
			t.Errorf("descriptor %+v", desc)
		}
	}
	ii, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := ii.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations[AnnotationImageName] != "docker.io/library/x:1" {
		t.Fatalf("index: %+v", im)
	}
	v, err := ii.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(v); err != nil {
		t.Error(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", ".tmp-*"))
	if len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}

// TestWriteOCIDirRemovesDeadTemps: the temp files an export killed while
// it wrote the layout left go with the next export into it (that one a
// live export holds stays is fsutil's TestWriteOutputKeepsLockedTemp).
func TestWriteOCIDirRemovesDeadTemps(t *testing.T) {
	t.Parallel()
	img := testImage(t)
	dir := filepath.Join(t.TempDir(), "layout")
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	dead := []string{filepath.Join(dir, ".tmp-index.json-17"), filepath.Join(blobs, ".tmp-"+strings.Repeat("ab", 32)+"-4242")}
	for _, p := range dead {
		if err := os.WriteFile(p, []byte("cut short"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := WriteOCIDir(context.Background(), dir, img, []string{"x:1"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range dead {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("dead export's temp %s kept (%v)", p, err)
		}
	}
}

// zstdLayer recompresses layer l of the test image's store as zstd.
func zstdLayer(t *testing.T, img *Image, l cache.Layer) cache.Layer {
	t.Helper()
	rc, err := img.Blobs.V1Layer(l).Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var b bytes.Buffer
	zw, _ := zstd.NewWriter(&b)
	if _, err := zw.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	d, n, err := img.Blobs.Put(context.Background(), bytes.NewReader(b.Bytes()), "", -1)
	if err != nil {
		t.Fatal(err)
	}
	return cache.Layer{MediaType: string(types.OCILayerZStd), Digest: d, Size: n, DiffID: l.DiffID}
}

func TestLayerMediaTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		docker bool
		zstd   bool
		gzip   bool
		want   types.MediaType
	}{
		{"oci zstd", false, true, true, types.OCILayerZStd},
		{"docker zstd", true, true, true, cache.DockerZstdLayer},
		{"oci uncompressed", false, false, false, types.OCIUncompressedLayer},
		{"docker uncompressed", true, false, false, types.DockerUncompressedLayer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			img := testImageWith(t, tt.gzip)
			last := len(img.Layers) - 1
			if tt.zstd {
				img.Layers[last] = zstdLayer(t, img, img.Layers[last])
			}
			var opts []Option
			if tt.docker {
				opts = append(opts, WithDockerMediaTypes())
			}
			v, err := img.V1(opts...)
			if err != nil {
				t.Fatal(err)
			}
			// validate.Image reads layers as gzip: check the structure
			// with Fast and every diff ID through Uncompressed.
			if err := validate.Image(v, validate.Fast); err != nil {
				t.Fatal(err)
			}
			checkDiffIDs(t, v)
			m, _ := v.Manifest()
			if got := m.Layers[last].MediaType; got != tt.want {
				t.Errorf("media type %s, want %s", got, tt.want)
			}
			// An OCI layout of it reads back.
			dir := filepath.Join(t.TempDir(), "l")
			if _, err := WriteOCIDir(context.Background(), dir, img, nil, opts...); err != nil {
				t.Fatal(err)
			}
			ii, err := layout.ImageIndexFromPath(dir)
			if err != nil {
				t.Fatal(err)
			}
			im, _ := ii.IndexManifest()
			back, err := ii.Image(im.Manifests[0].Digest)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(back, validate.Fast); err != nil {
				t.Error(err)
			}
		})
	}
}

// tarLayer stores a layer of the given entries (uncompressed).
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func tarLayer(t *testing.T, blobs *cache.BlobStore, es []entry) cache.Layer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: mode, Size: int64(len(e.body)), Linkname: e.link, ModTime: created}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	d, n, err := blobs.Put(context.Background(), bytes.NewReader(b.Bytes()), "", -1)
	if err != nil {
		t.Fatal(err)
	}
	return cache.Layer{MediaType: string(types.OCIUncompressedLayer), Digest: d, Size: n, DiffID: digest.Digest(d)}
}

// whiteoutImage: layer 1 makes a tree, layer 2 deletes, hides and adds.
func whiteoutImage(t *testing.T) *Image {
	blobs := newStore(t)
	l1 := tarLayer(t, blobs, []entry{
		{name: "a/", typ: tar.TypeDir, mode: 0o755},
		{name: "a/f1", body: "1", typ: tar.TypeReg},
		{name: "a/f2", body: "2", typ: tar.TypeReg, mode: 0o600},
		{name: "b/x", body: "x", typ: tar.TypeReg},
		{name: "c/y", body: "y", typ: tar.TypeReg},
		{name: "c/keep", body: "k", typ: tar.TypeReg},
		{name: "d", body: "d", typ: tar.TypeReg},
		{name: "hl", typ: tar.TypeLink, link: "d"},
	})
	l2 := tarLayer(t, blobs, []entry{
		{name: "a/.wh.f1", typ: tar.TypeReg},
		{name: ".wh.b", typ: tar.TypeReg},
		{name: "c/", typ: tar.TypeDir, mode: 0o750},
		{name: "c/.wh..wh..opq", typ: tar.TypeReg},
		{name: "c/z", body: "z", typ: tar.TypeReg},
		{name: "sl", typ: tar.TypeSymlink, link: "/a/f2"},
	})
	return &Image{Blobs: blobs, Layers: []cache.Layer{l1, l2}}
}

// wantTree is the tree of whiteoutImage (name -> content, "/" dirs).
var wantTree = []string{"a/", "a/f2=2", "c/", "c/z=z", "d=d", "hl=d", "sl->/a/f2"}

// readTree lists dir as wantTree spells it.
func readTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.IsDir():
			out = append(out, rel+"/")
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out = append(out, rel+"->"+l)
		default:
			b, _ := os.ReadFile(p)
			out = append(out, rel+"="+string(b))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func TestWriteLocal(t *testing.T) {
	t.Parallel()
	img := whiteoutImage(t)
	dir := filepath.Join(t.TempDir(), "out")
	if err := WriteLocal(context.Background(), dir, img); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, dir); !reflect.DeepEqual(got, wantTree) {
		t.Errorf("tree %v, want %v", got, wantTree)
	}
	fi, _ := os.Stat(filepath.Join(dir, "a", "f2"))
	ci, _ := os.Stat(filepath.Join(dir, "c"))
	if fi.Mode().Perm() != 0o600 || ci.Mode().Perm() != 0o750 || !fi.ModTime().Equal(created) {
		t.Errorf("modes %v %v, mtime %v", fi.Mode(), ci.Mode(), fi.ModTime())
	}
}

func TestWriteRootfsTar(t *testing.T) {
	t.Parallel()
	img := whiteoutImage(t)
	scratch := t.TempDir()
	p := filepath.Join(t.TempDir(), "rootfs.tar")
	f, _ := os.Create(p)
	if err := WriteRootfsTar(context.Background(), f, img, scratch); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("scratch not cleaned: %v", left)
	}
	// Extract it as a one-layer image and compare the trees.
	blobs := newStore(t)
	raw, _ := os.ReadFile(p)
	d, n, _ := blobs.Put(context.Background(), bytes.NewReader(raw), "", -1)
	one := &Image{Blobs: blobs, Layers: []cache.Layer{{MediaType: string(types.OCIUncompressedLayer), Digest: d, Size: n, DiffID: d}}}
	dir := t.TempDir()
	if err := WriteLocal(context.Background(), dir, one); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, dir); !reflect.DeepEqual(got, wantTree) {
		t.Errorf("tree %v, want %v", got, wantTree)
	}
	var names []string
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
		if h.Name == "hl" && h.Typeflag != tar.TypeLink && !(h.Typeflag == tar.TypeReg) {
			t.Errorf("hl: type %c", h.Typeflag)
		}
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("entries not sorted: %v", names)
	}
}

func TestWriteLocalConfined(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		entries []entry
		unsafe  bool
	}{
		{"dotdot", []entry{{name: "../evil", body: "x", typ: tar.TypeReg}}, true},
		{"hardlink out", []entry{{name: "h", typ: tar.TypeLink, link: "../../etc/passwd"}}, true},
		{"through absolute symlink", []entry{{name: "l", typ: tar.TypeSymlink, link: "/"}, {name: "l/inside", body: "x", typ: tar.TypeReg}}, false},
		{"through relative symlink", []entry{{name: "l", typ: tar.TypeSymlink, link: "../../../.."}, {name: "l/inside2", body: "x", typ: tar.TypeReg}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			blobs := newStore(t)
			img := &Image{Blobs: blobs, Layers: []cache.Layer{tarLayer(t, blobs, tt.entries)}}
			parent := t.TempDir()
			dir := filepath.Join(parent, "out")
			err := WriteLocal(context.Background(), dir, img)
			if tt.unsafe {
				if !errors.Is(err, ErrUnsafeEntry) {
					t.Fatalf("err %v, want ErrUnsafeEntry", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			left, _ := os.ReadDir(parent)
			if len(left) != 1 {
				t.Errorf("files outside the destination: %v", left)
			}
			if !tt.unsafe {
				if _, err := os.Stat(filepath.Join(dir, strings.TrimPrefix(tt.entries[1].name, "l/"))); err != nil {
					t.Errorf("entry not confined to the destination: %v", err)
				}
			}
		})
	}
}
