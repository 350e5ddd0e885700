package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/registrytest"
	"github.com/builderdev/builder/run"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// hostileLayer is a layer with the given entries on top of busybox.
func hostileImage(t *testing.T, hdrs ...*tar.Header) v1.Image {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hdrs {
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	data := b.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	base, err := registrytest.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestHostileBuilds builds Dockerfiles that try to leave the rootfs
// (issue 5, items 5-8 and 10) and checks that the host is untouched: a
// sentinel directory beside the context keeps its content, marker files
// never appear on the host, and no mount, cgroup or sandbox process is
// left. Each build either fails or keeps its writes in the image.
func TestHostileBuilds(t *testing.T) {
	requireRootOverlay(t)
	top := t.TempDir()
	root := filepath.Join(top, "root")
	hostState(t, root)
	sentinel := filepath.Join(top, "sentinel")
	os.Mkdir(sentinel, 0o755)
	os.WriteFile(filepath.Join(sentinel, "file"), []byte("sentinel"), 0o644)
	marker := fmt.Sprintf("builder-hostile-%d", os.Getpid())
	hostPaths := []string{"/" + marker, "/tmp/" + marker, "/etc/" + marker}
	for _, p := range hostPaths {
		os.Remove(p)
	}

	host := registrytest.NewInProcess(t)
	links := host + "/hostile/links:latest"
	registrytest.Push(t, hostileImage(t,
		&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/"},
		&tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: "/../../../tmp"},
		&tar.Header{Name: "rootlink", Typeflag: tar.TypeSymlink, Linkname: "/"},
		&tar.Header{Name: "devmem", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1, Mode: 0o666},
	), links)
	procLink := host + "/hostile/proclink:latest"
	registrytest.Push(t, hostileImage(t,
		&tar.Header{Name: "proc", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
		&tar.Header{Name: "sys", Typeflag: tar.TypeSymlink, Linkname: "../../../../../etc"},
		&tar.Header{Name: "dev/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "dev/null", Typeflag: tar.TypeReg, Size: 7},
	), procLink)

	workdirFd := ""
	for n := 3; n <= 20; n++ {
		workdirFd += fmt.Sprintf("FROM %s AS fd%d\nWORKDIR /proc/self/fd/%d\nRUN touch ../../../../../../../../../../%s || true\n", links, n, n, marker)
	}
	tests := []struct {
		name       string
		dockerfile string
		target     string
		// check runs a command in the built image, when the build succeeds.
		check   []string
		wantErr bool // the build must fail
		// allowErr: failing is a fine answer too (contained either way).
		allowErr bool
	}{
		{name: "COPY to symlinked destinations (item 5)", dockerfile: fmt.Sprintf("FROM %s\nCOPY f /link/%s\nCOPY f /evil/%s\n", links, marker, marker),
			check: []string{"sh", "-c", fmt.Sprintf("cat /%s /tmp/%s", marker, marker)}},
		{name: "WORKDIR /proc/self/fd/N (item 6)", dockerfile: workdirFd, allowErr: true},
		{name: "device node in a layer is not openable (item 10)", dockerfile: fmt.Sprintf("FROM %s\nRUN ! head -c1 /devmem && test -c /devmem\n", links)},
		{name: "symlinked /proc, /sys and a regular /dev/null (item 8)", dockerfile: fmt.Sprintf("FROM %s\nRUN echo x > /dev/null && test -e /proc/self/status && touch /etc/%s\n", procLink, marker),
			check: []string{"sh", "-c", "test -L /proc && test -L /sys && cat /dev/null"}, allowErr: true},
		{name: "RUN --mount bind of a root symlink, rw (item 7)", dockerfile: fmt.Sprintf("FROM %s AS src\nFROM %s\nRUN --mount=type=bind,from=src,source=/rootlink,target=/m,rw touch /m/%s && ! test -e /%s\n", links, links, marker, marker)},
		{name: "RUN --mount cache id=../../.. (item 7)", dockerfile: fmt.Sprintf("FROM %s\nRUN --mount=type=cache,id=../../..,target=/c touch /c/%s\n", links, marker)},
		{name: "RUN --mount bind source=../ (item 7)", dockerfile: fmt.Sprintf("FROM %s\nRUN --mount=type=bind,source=../,target=/ctx ! test -e /ctx/sentinel\n", links)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			targets := []string{tt.target}
			if strings.HasPrefix(tt.name, "WORKDIR") {
				targets = nil
				for n := 3; n <= 20; n++ {
					targets = append(targets, fmt.Sprintf("fd%d", n))
				}
			}
			for _, target := range targets {
				ctxDir := filepath.Join(t.TempDir(), "context")
				os.MkdirAll(ctxDir, 0o755)
				os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(tt.dockerfile), 0o644)
				os.WriteFile(filepath.Join(ctxDir, "f"), []byte("copied\n"), 0o644)
				out := filepath.Join(t.TempDir(), "out.tar")
				var log bytes.Buffer
				err := Build(context.Background(), BuildOptions{ContextDir: ctxDir, Root: root, Progress: "plain", Target: target,
					Outputs: []Output{{Type: "oci", Dest: out}}}, &log)
				if tt.wantErr && err == nil {
					t.Errorf("build succeeded, want a failure:\n%s", log.String())
				}
				if !tt.wantErr && !tt.allowErr && err != nil {
					t.Errorf("build failed:\n%s", log.String())
				}
				if err == nil && tt.check != nil {
					var o, e bytes.Buffer
					code, rerr := run.Run(context.Background(), RunOptions{Image: "oci-archive:" + out, Root: root, Remove: true, Args: tt.check},
						RunIO{Stdout: &o, Stderr: &e})
					if rerr != nil || code != 0 {
						t.Errorf("check %v in the image: code %d, %v: %s%s", tt.check, code, rerr, o.String(), e.String())
					}
				}
				for _, p := range hostPaths {
					if _, err := os.Lstat(p); err == nil {
						os.Remove(p)
						t.Errorf("%s appeared on the host", p)
					}
				}
				b, err := os.ReadFile(filepath.Join(sentinel, "file"))
				ents, _ := os.ReadDir(sentinel)
				if err != nil || string(b) != "sentinel" || len(ents) != 1 {
					t.Fatalf("sentinel changed: %q %v %d entries", b, err, len(ents))
				}
			}
		})
	}
}
