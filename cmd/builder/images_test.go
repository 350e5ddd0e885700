package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/pty"
	"github.com/builderdev/builder/internal/registrytest"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/spf13/cobra"
)

// runCLI runs a builder subcommand in-process and returns its stdout.
func runCLI(t *testing.T, cmdName string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := map[string]func() *cobra.Command{
		"images": newImagesCommand, "save": newSaveCommand, "rmi": newRmiCommand,
		"tag": newTagCommand, "inspect": newInspectCommand,
	}[cmdName]()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestImageStoreEndToEnd builds with -t against a registry, lists, saves
// as docker and oci archives, then stops the registry and builds FROM the
// stored name.
func TestImageStoreEndToEnd(t *testing.T) {
	requireRootOverlay(t)
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	host := strings.TrimPrefix(srv.URL, "http://")
	base, err := registrytest.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	registrytest.Push(t, base, host+"/busybox:latest")

	root, dir := t.TempDir(), t.TempDir()
	ctx1 := filepath.Join(dir, "app")
	os.MkdirAll(ctx1, 0o755)
	os.WriteFile(filepath.Join(ctx1, "Dockerfile"), []byte("FROM "+host+"/busybox:latest\nRUN echo one > /one && rm -rf /etc/group\n"), 0o644)
	var log bytes.Buffer
	iid := filepath.Join(dir, "iid")
	meta := filepath.Join(dir, "meta.json")
	if err := Build(context.Background(), BuildOptions{ContextDir: ctx1, Tags: []string{"myapp:1"}, Progress: "plain", Root: root, IIDFile: iid, MetadataFile: meta,
		Outputs: []Output{{Type: "local", Dest: filepath.Join(dir, "rootfs"), Attrs: map[string]string{}}}}, &log); err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "rootfs", "etc", "group")); !os.IsNotExist(err) {
		t.Errorf("type=local: /etc/group not whited out: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "rootfs", "one")); string(b) != "one\n" {
		t.Errorf("type=local: /one = %q", b)
	}
	idb, _ := os.ReadFile(iid)
	var md map[string]any
	mb, _ := os.ReadFile(meta)
	if err := json.Unmarshal(mb, &md); err != nil {
		t.Fatalf("metadata: %v: %s", err, mb)
	}
	if md["containerimage.config.digest"] != string(idb) || !strings.HasPrefix(string(idb), "sha256:") || md["image.name"] != "docker.io/library/myapp:1" {
		t.Errorf("iidfile %q, metadata %s", idb, mb)
	}
	steps, _ := md["builder.steps"].([]any)
	sawStats := false
	for _, s := range steps {
		if st, ok := s.(map[string]any)["stats"].(map[string]any); ok && st["pidsPeak"].(float64) > 0 {
			sawStats = true
		}
	}
	if !sawStats || md["builder.summary"] == nil {
		t.Errorf("metadata without RUN stats or summary: %s", mb)
	}

	out, err := runCLI(t, "images", "--root", root)
	if err != nil || !strings.Contains(out, "REPOSITORY") || !strings.Contains(out, "myapp") || !strings.Contains(out, string(idb)[7:19]) {
		t.Fatalf("images: %v\n%s", err, out)
	}
	dockerTar := filepath.Join(dir, "saved.tar")
	if out, err := runCLI(t, "save", "--root", root, "-o", dockerTar, "myapp:1"); err != nil {
		t.Fatalf("save: %v %s", err, out)
	}
	img, err := tarball.ImageFromPath(dockerTar, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("saved docker archive: %v", err)
	}
	ociTar := filepath.Join(dir, "saved.oci.tar")
	if out, err := runCLI(t, "save", "--root", root, "--format", "oci", "-o", ociTar, "myapp:1"); err != nil {
		t.Fatalf("save oci: %v %s", err, out)
	}
	if _, err := exec.LookPath("skopeo"); err == nil {
		for _, src := range []string{"docker-archive:" + dockerTar, "oci-archive:" + ociTar} {
			if out, err := exec.Command("skopeo", "copy", src, "oci:"+filepath.Join(dir, "copy")+":x").CombinedOutput(); err != nil {
				t.Errorf("skopeo copy %s: %v\n%s", src, err, out)
			}
		}
		if _, err := layout.ImageIndexFromPath(filepath.Join(dir, "copy")); err != nil {
			t.Error(err)
		}
	}

	// The registry is gone: FROM myapp:1 must come from the store.
	srv.Close()
	ctx2 := filepath.Join(dir, "app2")
	os.MkdirAll(ctx2, 0o755)
	os.WriteFile(filepath.Join(ctx2, "Dockerfile"), []byte("FROM myapp:1\nRUN cat /one > /two\n"), 0o644)
	log.Reset()
	if err := Build(context.Background(), BuildOptions{ContextDir: ctx2, Tags: []string{"second"}, Progress: "plain", Root: root,
		Outputs: []Output{{Type: "tar", Dest: filepath.Join(dir, "second.tar"), Attrs: map[string]string{}}}}, &log); err != nil {
		t.Fatalf("build FROM stored image: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "FROM docker.io/library/myapp:1@sha256:") {
		t.Errorf("FROM not pinned to the stored image:\n%s", log.String())
	}
	tv, err := exec.Command("tar", "tf", filepath.Join(dir, "second.tar")).CombinedOutput()
	if err != nil || !strings.Contains(string(tv), "two\n") || !strings.Contains(string(tv), "one\n") || strings.Contains(string(tv), "etc/group\n") {
		t.Errorf("type=tar: %v\n%s", err, tv)
	}
	// Several images into one archive, as docker save A B.
	multi := filepath.Join(dir, "multi.tar")
	if out, err := runCLI(t, "save", "--root", root, "-o", multi, "myapp:1", "second", "myapp:1"); err != nil {
		t.Fatalf("save of two images: %v %s", err, out)
	}
	for _, tag := range []string{"myapp:1", "second:latest"} {
		ref, _ := name.NewTag(tag)
		img, err := tarball.ImageFromPath(multi, &ref)
		if err == nil {
			err = validate.Image(img)
		}
		if err != nil {
			t.Errorf("%s in the saved archive: %v", tag, err)
		}
	}
	if m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(multi) }); err != nil || len(m) != 2 {
		t.Errorf("saved archive manifest: %v %+v, want 2 entries", err, m)
	}
	multiOCI := filepath.Join(dir, "multi-oci")
	if out, err := runCLI(t, "save", "--root", root, "--format", "oci", "-o", multiOCI+".tar", "myapp:1", "second"); err != nil {
		t.Fatalf("save oci of two images: %v %s", err, out)
	}
	os.MkdirAll(multiOCI, 0o755)
	if out, err := exec.Command("tar", "xf", multiOCI+".tar", "-C", multiOCI).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	idx, err := layout.ImageIndexFromPath(multiOCI)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 || im.Manifests[0].Annotations["io.containerd.image.name"] != "docker.io/library/myapp:1" {
		t.Errorf("oci index of two images: %+v", im.Manifests)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("oci layout of two images: %v", err)
	}

	out, err = runCLI(t, "rmi", "--root", root, "myapp:1")
	if err != nil || !strings.Contains(out, "Untagged: myapp:1") || !strings.Contains(out, "Deleted: "+string(idb)) {
		t.Errorf("rmi: %v\n%s", err, out)
	}
	out, _ = runCLI(t, "images", "--root", root)
	if strings.Contains(out, "myapp") || !strings.Contains(out, "second") {
		t.Errorf("images after rmi:\n%s", out)
	}
}

// TestSaveRefusesOnlyATerminal: builder save to stdout refuses a terminal
// before any work, as docker save, but writes to other character devices
// such as /dev/null.
func TestSaveRefusesOnlyATerminal(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	for _, tt := range []struct {
		name         string
		out          *os.File
		wantCowardly bool
	}{
		{"terminal", slave, true},
		{"dev-null", devNull, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newSaveCommand()
			cmd.SetArgs([]string{"--root", t.TempDir(), "nosuch:latest"})
			cmd.SetOut(tt.out)
			cmd.SetErr(io.Discard)
			err := cmd.ExecuteContext(context.Background())
			if err == nil {
				t.Fatal("saving an unknown image succeeded")
			}
			if got := strings.Contains(err.Error(), "cowardly refusing"); got != tt.wantCowardly {
				t.Errorf("err = %v, want refusal %v", err, tt.wantCowardly)
			}
		})
	}
}
