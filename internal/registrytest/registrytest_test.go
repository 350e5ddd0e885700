package registrytest

import (
	"archive/tar"
	"context"
	"io"
	"net/http"
	"runtime"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func TestBusyboxImage(t *testing.T) {
	t.Parallel()
	img, err := BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate: %v", err)
	}
	again, err := buildBusybox()
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Fatalf("not deterministic: %s != %s", d1, d2)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH || cf.Config.Cmd[0] != "sh" ||
		cf.Config.Env[0] != "PATH="+DefaultPath || len(cf.History) != 2 || !cf.Created.Time.Equal(Epoch) {
		t.Fatalf("config: %+v", cf)
	}

	layers, _ := img.Layers()
	if len(layers) != 1 {
		t.Fatalf("%d layers", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	want := map[string]func(h *tar.Header) bool{
		"bin/busybox": func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg && h.Mode == 0o755 && h.Size > 0 },
		"bin/sh":      func(h *tar.Header) bool { return h.Typeflag == tar.TypeSymlink && h.Linkname == "/bin/busybox" },
		"tmp/":        func(h *tar.Header) bool { return h.Typeflag == tar.TypeDir && h.Mode == 0o1777 },
		"home/app/":   func(h *tar.Header) bool { return h.Uid == 1000 && h.Gid == 1000 },
		"etc/passwd":  func(h *tar.Header) bool { return h.Size > 0 },
		"etc/group":   func(h *tar.Header) bool { return h.Size > 0 },
		"root/":       func(h *tar.Header) bool { return h.Mode == 0o700 },
	}
	tr := tar.NewReader(rc)
	prev := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name <= prev {
			t.Errorf("entries not sorted: %q after %q", h.Name, prev)
		}
		prev = h.Name
		if !h.ModTime.Equal(Epoch) {
			t.Errorf("%s: mtime %v", h.Name, h.ModTime)
		}
		if check, ok := want[h.Name]; ok {
			if !check(h) {
				t.Errorf("%s: unexpected header %+v", h.Name, h)
			}
			delete(want, h.Name)
		}
	}
	for n := range want {
		t.Errorf("missing %s", n)
	}
}

func TestPushAndPull(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		start func(testing.TB) string
	}{
		{"inprocess", NewInProcess},
		{"distribution", StartDistribution},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.name == "distribution" && testing.Short() {
				t.Skip("short")
			}
			host := tt.start(t)
			pinned := PushBusybox(t, host+"/busybox:latest")
			img, _ := BusyboxImage()
			want, _ := img.Digest()
			r, err := ParseRef(host + "/busybox:latest")
			if err != nil {
				t.Fatal(err)
			}
			desc, err := remote.Head(r, remote.WithContext(context.Background()))
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest != want || pinned != host+"/busybox@"+want.String() {
				t.Fatalf("pushed %s (%s), registry has %s", want, pinned, desc.Digest)
			}
		})
	}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	host := NewInProcessHandler(t, func(h http.Handler) http.Handler { return BasicAuth(h, "u", "p") })
	resp, err := http.Get("http://" + host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("status %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/", nil)
	req.SetBasicAuth("u", "p")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with credentials: status %d", resp.StatusCode)
	}
}
