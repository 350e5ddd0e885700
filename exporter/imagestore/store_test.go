package imagestore

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/exporter"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// testImage stores one uncompressed layer holding file=content and
// returns an image of it.
func testImage(t *testing.T, blobs *cache.BlobStore, content string, created time.Time) *exporter.Image {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "file", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	tw.Write([]byte(content))
	tw.Close()
	d, n, err := blobs.Put(context.Background(), bytes.NewReader(b.Bytes()), "", -1)
	if err != nil {
		t.Fatal(err)
	}
	return &exporter.Image{
		Blobs:  blobs,
		Layers: []cache.Layer{{MediaType: string(types.OCIUncompressedLayer), Digest: d, Size: n, DiffID: d}},
		Config: v1.ConfigFile{Created: v1.Time{Time: created}, OS: "linux", Architecture: "amd64"},
	}
}

func open(t *testing.T) (*Store, *cache.BlobStore, string) {
	t.Helper()
	blobs, err := cache.OpenBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s, err := Open(dir, blobs)
	if err != nil {
		t.Fatal(err)
	}
	return s, blobs, dir
}

func names(t *testing.T, s *Store) map[string]digest.Digest {
	t.Helper()
	all, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]digest.Digest{}
	for _, im := range all {
		if len(im.Names) == 0 {
			m["<none>"+im.ID.String()] = im.ID
		}
		for _, n := range im.Names {
			m[n] = im.ID
		}
	}
	return m
}

func TestPutTagRemove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, blobs, dir := open(t)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	a, err := s.Put(ctx, testImage(t, blobs, "a", t0), []string{"app", "app:1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Put(ctx, testImage(t, blobs, "b", t0.Add(time.Hour)), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := names(t, s)
	want := map[string]digest.Digest{"docker.io/library/app:latest": a.ID, "docker.io/library/app:1": a.ID, "<none>" + b.ID.String(): b.ID}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("names %v, want %v", got, want)
	}
	all, _ := s.List()
	if all[0].ID != b.ID || !all[1].Created.Equal(t0) || all[0].Size <= 0 {
		t.Errorf("list order/fields: %+v", all)
	}

	tests := []struct {
		name string
		do   func() error
		want map[string]digest.Digest
	}{
		{"tag by id prefix", func() error { return s.Tag(b.ID.Encoded()[:8], "localhost:5000/b:x") },
			map[string]digest.Digest{"docker.io/library/app:latest": a.ID, "docker.io/library/app:1": a.ID, "localhost:5000/b:x": b.ID}},
		{"moving a name leaves a dangling image", func() error {
			_, err := s.Put(ctx, testImage(t, blobs, "b", t0.Add(time.Hour)), []string{"app:1"})
			return err
		}, map[string]digest.Digest{"docker.io/library/app:latest": a.ID, "docker.io/library/app:1": b.ID, "localhost:5000/b:x": b.ID}},
		{"rmi by name untags", func() error {
			r, err := s.Remove("localhost:5000/b:x", false, nil)
			if err == nil && (r.Deleted != "" || len(r.Untagged) != 1) {
				err = fmt.Errorf("removed %+v", r)
			}
			return err
		}, map[string]digest.Digest{"docker.io/library/app:latest": a.ID, "docker.io/library/app:1": b.ID}},
		{"rmi of the last name deletes", func() error {
			r, err := s.Remove("app", false, nil)
			if err == nil && r.Deleted != a.ID {
				err = fmt.Errorf("removed %+v", r)
			}
			return err
		}, map[string]digest.Digest{"docker.io/library/app:1": b.ID}},
	}
	for _, tt := range tests {
		if err := tt.do(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := names(t, s); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Fatalf("%s: names %v, want %v", tt.name, got, tt.want)
		}
	}
	before := names(t, s)
	for _, bad := range [][2]string{{"../x", "../../y"}, {"app:1", "../y"}, {"app:1", "a//b"}, {"Upper", "y"}} {
		if err := s.Tag(bad[0], bad[1]); !errors.Is(err, exporter.ErrInvalidReference) {
			t.Errorf("tag %s %s: %v, want an invalid reference", bad[0], bad[1], err)
		}
	}
	if got := names(t, s); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("an invalid tag changed the names: %v, want %v", got, before)
	}
	s.Tag("app:1", "other")
	if _, err := s.Remove(b.ID.String(), false, nil); !errors.Is(err, ErrConflict) {
		t.Errorf("rmi of an id with two names: %v", err)
	}
	if _, err := s.Remove("nope", false, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("rmi nope: %v", err)
	}
	// Persistence: a new Store on the same directory sees the same.
	s2, err := Open(dir, blobs)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(names(t, s2)) != fmt.Sprint(names(t, s)) {
		t.Error("reopened store differs")
	}
	img, err := s2.Load(b)
	if err != nil || len(img.Layers) != 1 || img.Layers[0].Digest != testImage(t, blobs, "b", t0).Layers[0].Digest {
		t.Errorf("load: %+v, %v", img, err)
	}
	if _, err := s2.Remove(b.ID.String(), true, nil); err != nil {
		t.Fatal(err)
	}
	if len(names(t, s2)) != 0 {
		t.Errorf("left: %v", names(t, s2))
	}
}

// TestConcurrentPut: stores in parallel (as separate Store values, like
// processes: flock excludes them too) must not lose names.
func TestConcurrentPut(t *testing.T) {
	t.Parallel()
	_, blobs, dir := open(t)
	var wg sync.WaitGroup
	const n = 16
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(dir, blobs)
			if err != nil {
				errs <- err
				return
			}
			img := testImage(t, blobs, fmt.Sprint(i), time.Unix(int64(i), 0))
			if _, err := s.Put(context.Background(), img, []string{fmt.Sprintf("img%d", i), "shared"}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s, _ := Open(dir, blobs)
	got := names(t, s)
	if len(got) != n+1 {
		t.Fatalf("%d names, want %d: %v", len(got), n+1, got)
	}
	// "shared" moved n-1 times: the images that lost it keep their own
	// names; none is lost.
	for i := range n {
		if _, ok := got[fmt.Sprintf("docker.io/library/img%d:latest", i)]; !ok {
			t.Errorf("img%d lost", i)
		}
	}
}

type fakeRemote struct{ calls int }

func (f *fakeRemote) Resolve(ctx context.Context, ref string, p llb.Platform) (*registry.Resolved, error) {
	f.calls++
	return nil, fmt.Errorf("remote %s: unreachable", ref)
}

func (f *fakeRemote) Pull(ctx context.Context, r *registry.Resolved) ([]cache.Layer, error) {
	f.calls++
	return nil, errors.New("unreachable")
}

func TestSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, blobs, _ := open(t)
	img := testImage(t, blobs, "x", time.Unix(0, 0))
	st, err := s.Put(ctx, img, []string{"app:1"})
	if err != nil {
		t.Fatal(err)
	}
	remote := &fakeRemote{}
	src := &Source{Store: s, Remote: remote}
	host := llb.Platform{OS: "linux", Architecture: "amd64"}
	pin := "docker.io/library/app:1@" + st.Manifest.Digest.String()
	tests := []struct {
		ref    string
		p      llb.Platform
		pinned string // "" = goes to the remote
	}{
		{"app:1", host, pin},
		{"docker.io/library/app:1", llb.Platform{}, pin},
		{pin, host, pin},
		{"elsewhere/app@" + st.Manifest.Digest.String(), host, "elsewhere/app@" + st.Manifest.Digest.String()},
		{"app:2", host, ""},
		{"app:1", llb.Platform{OS: "linux", Architecture: "arm64"}, ""},
	}
	for _, tt := range tests {
		remote.calls = 0
		pinned, _, cfg, err := src.ResolveImageConfig(ctx, tt.ref, tt.p)
		if tt.pinned == "" {
			if err == nil || remote.calls != 1 {
				t.Errorf("%s: %s, %v (remote calls %d)", tt.ref, pinned, err, remote.calls)
			}
			continue
		}
		if err != nil || pinned != tt.pinned || len(cfg) == 0 || remote.calls != 0 {
			t.Errorf("%s: %s, %v; want %s", tt.ref, pinned, err, tt.pinned)
			continue
		}
		r, err := src.Resolve(ctx, pinned, tt.p)
		if err != nil {
			t.Fatal(err)
		}
		layers, err := src.Pull(ctx, r)
		if err != nil || len(layers) != 1 || layers[0] != img.Layers[0] || remote.calls != 0 {
			t.Errorf("%s: pull %v, %v", tt.ref, layers, err)
		}
	}
}

// TestSourcePull checks --pull: names go to the remote even when stored,
// digests stay served from the store.
func TestSourcePull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, blobs, _ := open(t)
	img := testImage(t, blobs, "x", time.Unix(0, 0))
	st, err := s.Put(ctx, img, []string{"app:1"})
	if err != nil {
		t.Fatal(err)
	}
	remote := &fakeRemote{}
	src := &Source{Store: s, Remote: remote, AlwaysPull: true}
	host := llb.Platform{OS: "linux", Architecture: "amd64"}
	pin := "docker.io/library/app:1@" + st.Manifest.Digest.String()
	tests := []struct {
		ref        string
		wantRemote bool
	}{
		{"app:1", true},
		{"docker.io/library/app:1", true},
		{"onlylocal", true},
		{pin, false},
	}
	for _, tt := range tests {
		remote.calls = 0
		pinned, _, _, err := src.ResolveImageConfig(ctx, tt.ref, host)
		if tt.wantRemote {
			if err == nil || remote.calls != 1 {
				t.Errorf("%s with Pull: %s, %v (remote calls %d), want the remote's error", tt.ref, pinned, err, remote.calls)
			}
			continue
		}
		if err != nil || pinned != pin || remote.calls != 0 {
			t.Errorf("%s with Pull: %s, %v (remote calls %d)", tt.ref, pinned, err, remote.calls)
		}
	}
}

// TestPutMissingLayer: Put refuses an image whose layer is not in the blob
// store, or is there with another size, and says which layer and why.
func TestPutMissingLayer(t *testing.T) {
	t.Parallel()
	s, blobs, _ := open(t)
	img := testImage(t, blobs, "a", time.Time{})
	stored := img.Layers[0]
	tests := []struct {
		name  string
		layer cache.Layer
		want  string
	}{
		{"absent", cache.Layer{MediaType: stored.MediaType, Digest: digest.FromString("absent"), Size: 6, DiffID: digest.FromString("absent")},
			"storing image: layer 0 (" + digest.FromString("absent").String() + ") is not in the blob store: "},
		{"other size", cache.Layer{MediaType: stored.MediaType, Digest: stored.Digest, Size: stored.Size + 1, DiffID: stored.DiffID},
			fmt.Sprintf("storing image: layer 0 (%s): the blob store holds %d bytes, the image says %d", stored.Digest, stored.Size, stored.Size+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img.Layers = []cache.Layer{tt.layer}
			_, err := s.Put(context.Background(), img, []string{"app"})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("Put: %v, want an error starting %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "<nil>") {
				t.Errorf("Put: %v", err)
			}
			if all, _ := s.List(); len(all) != 0 {
				t.Errorf("stored %+v", all)
			}
		})
	}
}

func TestLayersUnpackedSize(t *testing.T) {
	ctx := context.Background()
	s, blobs, dir := open(t)
	im, err := s.Put(ctx, testImage(t, blobs, strings.Repeat("z", 5000), time.Now()), []string{"sized"})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := s.Layers(im)
	if err != nil {
		t.Fatal(err)
	}
	// One uncompressed tar layer: a 512-byte header, 5000 bytes padded
	// to 5120, and the 1024-byte end.
	if len(ls) != 1 || ls[0].Unpacked != 512+5120+1024 || ls[0].Size != ls[0].Unpacked {
		t.Fatalf("layers %+v", ls)
	}
	if n, err := s.UnpackedSize(im); err != nil || n != ls[0].Unpacked {
		t.Errorf("UnpackedSize = %d, %v", n, err)
	}
	// The size is kept: a garbled record is measured again.
	p := filepath.Join(dir, "sizes", ls[0].Digest.Encoded())
	if b, err := os.ReadFile(p); err != nil || string(b) != "6656" {
		t.Errorf("size record %q %v", b, err)
	}
	os.WriteFile(p, []byte("garbage"), 0o600)
	if n, err := s.UnpackedSize(im); err != nil || n != 6656 {
		t.Errorf("after a garbled record: %d, %v", n, err)
	}
}

// TestUnpackedSizeMultiPlatform: a multi-platform image's size is its host
// platform's image's (as docker's containerd store shows it), or all its
// images' together when none is the host's; never 0.
func TestUnpackedSizeMultiPlatform(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, blobs, _ := open(t)
	host := llb.HostPlatform()
	mk := func(arch string, n int) *exporter.Image {
		img := testImage(t, blobs, strings.Repeat(arch[:1], n), time.Unix(10, 0))
		img.Config.Architecture = arch
		return img
	}
	other := "s390x"
	if host.Architecture == other {
		other = "ppc64le"
	}
	// Tar sizes: 512 header + content padded to 512 + 1024 end.
	native, err := s.PutIndex(ctx, []*exporter.Image{mk(other, 5000), mk(host.Architecture, 100)}, []string{"native:1"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.UnpackedSize(native); err != nil || n != 512+512+1024 {
		t.Errorf("size with a %s image: %d %v, want that image's %d", host.Architecture, n, err, 512+512+1024)
	}
	foreign, err := s.PutIndex(ctx, []*exporter.Image{mk(other, 5000), mk("riscv64", 100)}, []string{"foreign:1"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.UnpackedSize(foreign); err != nil || n != (512+5120+1024)+(512+512+1024) {
		t.Errorf("size without a host image: %d %v, want both images' %d", n, err, (512+5120+1024)+(512+512+1024))
	}
	if _, err := s.Layers(native); err == nil {
		t.Error("Layers of an index gave no error")
	}
}
