package registrytest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BusyboxPath is the static busybox the base image is built from (Debian
// package busybox-static).
const BusyboxPath = "/bin/busybox"

// Epoch is the fixed time of every file and history entry of BusyboxImage.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultPath is the PATH of BusyboxImage, the same as Docker's default.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// BusyboxEntry is one file of the busybox layer.
type BusyboxEntry struct {
	Name     string // relative, no leading slash
	Type     byte   // tar.TypeDir, TypeReg, TypeSymlink
	Mode     int64
	UID, GID int
	Linkname string
	Data     []byte
}

var (
	busyboxOnce  sync.Once
	busyboxImage v1.Image
	busyboxErr   error
)

// BusyboxImage returns a small but real base image built from the host's
// static busybox: bin/busybox with a symlink for each applet, /etc/passwd
// and /etc/group with root, nobody and app (1000:1000), /tmp (1777), /root
// and /home/app. Times are fixed, so its digest is the same on every run
// (on one architecture and busybox build). The image uses OCI media types.
func BusyboxImage() (v1.Image, error) {
	busyboxOnce.Do(func() { busyboxImage, busyboxErr = buildBusybox() })
	return busyboxImage, busyboxErr
}

// BusyboxEntries lists the files of the busybox layer, sorted.
func BusyboxEntries() ([]BusyboxEntry, error) { return busyboxEntries(BusyboxPath) }

// busyboxEntries lists the files of a busybox layer with the busybox
// binary at bin; the applets are those of the host's busybox (the same
// Debian package for another architecture has the same applets).
func busyboxEntries(binPath string) ([]BusyboxEntry, error) {
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return nil, fmt.Errorf("reading busybox: %w", err)
	}
	out, err := exec.Command(BusyboxPath, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", BusyboxPath, err)
	}
	entries := map[string]BusyboxEntry{}
	addDir := func(name string, mode int64, uid, gid int) {
		entries[name] = BusyboxEntry{Name: name, Type: tar.TypeDir, Mode: mode, UID: uid, GID: gid}
	}
	var parents func(p string)
	parents = func(p string) {
		d := path.Dir(p)
		if d == "." || d == "/" {
			return
		}
		if _, ok := entries[d]; !ok {
			addDir(d, 0o755, 0, 0)
		}
		parents(d)
	}
	add := func(e BusyboxEntry) {
		entries[e.Name] = e
		parents(e.Name)
	}
	add(BusyboxEntry{Name: "bin/busybox", Type: tar.TypeReg, Mode: 0o755, Data: bin})
	for _, line := range strings.Split(string(out), "\n") {
		p := strings.Trim(strings.TrimSpace(line), "/")
		if p == "" || p == "bin/busybox" || strings.Contains(p, "..") {
			continue
		}
		add(BusyboxEntry{Name: p, Type: tar.TypeSymlink, Mode: 0o777, Linkname: "/bin/busybox"})
	}
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "etc", "var"} {
		add(BusyboxEntry{Name: d, Type: tar.TypeDir, Mode: 0o755})
	}
	add(BusyboxEntry{Name: "tmp", Type: tar.TypeDir, Mode: 0o1777})
	add(BusyboxEntry{Name: "root", Type: tar.TypeDir, Mode: 0o700})
	add(BusyboxEntry{Name: "home/app", Type: tar.TypeDir, Mode: 0o755, UID: 1000, GID: 1000})
	add(BusyboxEntry{Name: "etc/passwd", Type: tar.TypeReg, Mode: 0o644, Data: []byte(
		"root:x:0:0:root:/root:/bin/sh\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n" +
			"app:x:1000:1000:app:/home/app:/bin/sh\n")})
	add(BusyboxEntry{Name: "etc/group", Type: tar.TypeReg, Mode: 0o644, Data: []byte(
		"root:x:0:\n" +
			"nogroup:x:65534:\n" +
			"app:x:1000:\n")})

	list := make([]BusyboxEntry, 0, len(entries))
	for _, e := range entries {
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list, nil
}

// BusyboxLayerTar returns the uncompressed tar of the busybox layer.
func BusyboxLayerTar() ([]byte, error) { return busyboxLayerTar(BusyboxPath) }

func busyboxLayerTar(binPath string) ([]byte, error) {
	entries, err := busyboxEntries(binPath)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		name := e.Name
		if e.Type == tar.TypeDir {
			name += "/"
		}
		hdr := &tar.Header{
			Typeflag: e.Type,
			Name:     name,
			Linkname: e.Linkname,
			Mode:     e.Mode,
			Uid:      e.UID,
			Gid:      e.GID,
			Size:     int64(len(e.Data)),
			ModTime:  Epoch,
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("busybox layer: %s: %w", e.Name, err)
		}
		if _, err := tw.Write(e.Data); err != nil {
			return nil, fmt.Errorf("busybox layer: %s: %w", e.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func buildBusybox() (v1.Image, error) { return buildBusyboxFor(BusyboxPath, runtime.GOARCH) }

// buildBusyboxFor builds the busybox image of architecture arch from the
// busybox binary at binPath.
func buildBusyboxFor(binPath, arch string) (v1.Image, error) {
	data, err := busyboxLayerTar(binPath)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("busybox layer: %w", err)
	}
	// plainLayer hides the tarball layer's Descriptor method, whose empty
	// (non-nil) annotations map would make the manifest differ from its
	// serialization.
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: plainLayer{layer},
		History: v1.History{
			Created:   v1.Time{Time: Epoch},
			CreatedBy: "ADD busybox-static rootfs / # registrytest",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = arch
	cf.OS = "linux"
	cf.Created = v1.Time{Time: Epoch}
	cf.Config.Env = []string{"PATH=" + DefaultPath}
	cf.Config.Cmd = []string{"sh"}
	cf.History = append(cf.History, v1.History{
		Created:    v1.Time{Time: Epoch},
		CreatedBy:  `CMD ["sh"]`,
		EmptyLayer: true,
	})
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	return img, nil
}

// ParseRef parses ref, speaking plain HTTP to loopback registries.
func ParseRef(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if isLoopback(r.Context().RegistryStr()) {
		r, err = name.ParseReference(ref, name.Insecure)
	}
	return r, err
}

func isLoopback(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Write pushes img to ref (anonymously) and returns the pinned reference
// ref@digest.
func Write(ctx context.Context, img v1.Image, ref string) (string, error) {
	return write(ctx, img, ref)
}

// WriteIndex pushes the index ii to ref and returns ref@digest.
func WriteIndex(ctx context.Context, ii v1.ImageIndex, ref string) (string, error) {
	return write(ctx, ii, ref)
}

// pushable is an image or an index.
type pushable interface {
	remote.Taggable
	Digest() (v1.Hash, error)
}

// write pushes x, with what it references, to ref.
func write(ctx context.Context, x pushable, ref string) (string, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	if err := remote.Push(r, x, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := x.Digest()
	if err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	return r.Context().Name() + "@" + d.String(), nil
}

// Push is Write for tests: it fails t on error and returns ref's
// repository@digest.
func Push(t testing.TB, img v1.Image, ref string) string {
	t.Helper()
	pinned, err := Write(context.Background(), img, ref)
	if err != nil {
		t.Fatal(err)
	}
	return pinned
}

// PushIndex is WriteIndex for tests.
func PushIndex(t testing.TB, ii v1.ImageIndex, ref string) string {
	t.Helper()
	pinned, err := WriteIndex(context.Background(), ii, ref)
	if err != nil {
		t.Fatal(err)
	}
	return pinned
}

// PushBusybox pushes BusyboxImage to ref and returns repository@digest.
func PushBusybox(t testing.TB, ref string) string {
	t.Helper()
	img, err := BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	return Push(t, img, ref)
}

// plainLayer is a v1.Layer with only the interface's methods.
type plainLayer struct{ v1.Layer }
