package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/builderdev/builder/executor"
	imagestore "github.com/builderdev/builder/exporter/imagestore"
	"github.com/builderdev/builder/internal/registrytest"
	"github.com/builderdev/builder/run"
	"github.com/builderdev/builder/state"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// requireEmulation skips unless arm64 binaries run here (binfmt_misc with
// qemu-aarch64, F flag) and the two-platform busybox base can be made.
func requireEmulation(t *testing.T) v1.ImageIndex {
	t.Helper()
	requireRootOverlay(t)
	if runtime.GOARCH != "amd64" {
		t.Skip("the two-platform test builds amd64 natively and arm64 under emulation")
	}
	if err := executor.CheckEmulation("arm64"); err != nil {
		t.Skipf("no arm64 emulation: %v", err)
	}
	idx, err := registrytest.BusyboxIndex()
	if errors.Is(err, registrytest.ErrNoArm64Busybox) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

const multiPlatformDockerfile = `ARG BASE
FROM --platform=$BUILDPLATFORM $BASE AS tools
RUN echo built-once > /tool
FROM --platform=$BUILDPLATFORM $BASE AS cross
ARG TARGETARCH
RUN echo "for $TARGETARCH on $(uname -m)" > /cross
FROM $BASE
ARG TARGETPLATFORM
COPY --from=tools /tool /tool
COPY --from=cross /cross /cross
RUN uname -m > /arch && echo $TARGETPLATFORM > /target
`

// TestMultiPlatformBuild builds linux/amd64 and linux/arm64 in one build:
// a BUILDPLATFORM stage without TARGET args runs once, one with TARGETARCH
// once per target natively, the target stage's RUN under emulation for
// arm64. The OCI tar holds an index of both images, the pushed index reads
// back with skopeo, run --platform picks the arm64 image, and a second
// build is fully cached.
func TestMultiPlatformBuild(t *testing.T) {
	idx := requireEmulation(t)
	host := registrytest.NewInProcess(t)
	base := registrytest.PushIndex(t, idx, host+"/busybox:multi")
	root := filepath.Join(t.TempDir(), "root")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(multiPlatformDockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	ociTar := filepath.Join(t.TempDir(), "app.tar")
	localDir := filepath.Join(t.TempDir(), "local")
	rootfsTar := filepath.Join(t.TempDir(), "rootfs.tar")
	meta := filepath.Join(t.TempDir(), "meta.json")
	ref := host + "/app:1"
	build := func() (string, map[string]any) {
		var progress bytes.Buffer
		err := Build(context.Background(), BuildOptions{
			ContextDir: dir, Root: root, Progress: "plain", Tags: []string{ref}, Push: true,
			Platform: "linux/amd64,linux/arm64", BuildArgs: map[string]string{"BASE": base, "SOURCE_DATE_EPOCH": "1700000000"},
			Outputs: []Output{{Type: "oci", Dest: ociTar, Attrs: map[string]string{}}, {Type: "image", Attrs: map[string]string{"push": "true"}},
				{Type: "local", Dest: localDir, Attrs: map[string]string{}}, {Type: "tar", Dest: rootfsTar, Attrs: map[string]string{}}},
			MetadataFile: meta,
		}, &progress)
		if err != nil {
			t.Fatalf("build: %v\n%s", err, progress.String())
		}
		var m map[string]any
		raw, err := os.ReadFile(meta)
		if err != nil || json.Unmarshal(raw, &m) != nil {
			t.Fatalf("metadata file: %v %s", err, raw)
		}
		return progress.String(), m
	}
	progress, m := build()

	// Progress: each step names its platform; the shared stage runs once.
	for _, want := range []string{"[linux/amd64 tools 2/2] RUN echo built-once", "[linux/amd64->arm64 cross 2/2] RUN echo", "[linux/arm64 stage-2 4/4] RUN uname -m", "[linux/amd64 stage-2 4/4] RUN uname -m"} {
		if !strings.Contains(progress, want) {
			t.Errorf("progress lacks %q:\n%s", want, progress)
		}
	}
	if n := stepIDs(progress, `\[[^\]]*\] RUN echo built-once`); n != 1 {
		t.Errorf("the BUILDPLATFORM stage without TARGET args started %d times, want once:\n%s", n, progress)
	}
	if n := stepIDs(progress, `\[linux/amd64(->arm64)? cross 2/2\] RUN echo "for (amd64|arm64) on`); n != 2 {
		t.Errorf("the BUILDPLATFORM stage with TARGETARCH started %d times, want twice:\n%s", n, progress)
	}
	dgst, _ := m["containerimage.digest"].(string)
	desc, _ := m["containerimage.descriptor"].(map[string]any)
	if !strings.HasPrefix(dgst, "sha256:") || desc["mediaType"] != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("metadata: digest %q descriptor %v, want the index's", dgst, desc)
	}

	// The OCI tar: an index of both images, each with its files.
	want := map[string]map[string]string{
		"amd64": {"arch": "x86_64\n", "cross": "for amd64 on x86_64\n", "tool": "built-once\n", "target": "linux/amd64\n"},
		"arm64": {"arch": "aarch64\n", "cross": "for arm64 on x86_64\n", "tool": "built-once\n", "target": "linux/arm64\n"},
	}
	checkOCIIndex(t, ociTar, dgst, want)

	// type=local and type=tar: one directory per platform, as buildx.
	rootfs := tarFiles(t, rootfsTar)
	for _, p := range []string{"linux_amd64", "linux_arm64"} {
		arch := map[string]string{"linux_amd64": "x86_64\n", "linux_arm64": "aarch64\n"}[p]
		if b, err := os.ReadFile(filepath.Join(localDir, p, "arch")); err != nil || string(b) != arch {
			t.Errorf("type=local: %s/arch = %q, %v; want %q", p, b, err, arch)
		}
		if got := rootfs[p+"/arch"]; got != arch {
			t.Errorf("type=tar: %s/arch = %q, want %q", p, got, arch)
		}
	}

	// The pushed index, read back by skopeo.
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Log("skopeo not installed: pushed index not checked with it")
	} else {
		raw := skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+ref)
		var im v1.IndexManifest
		if err := json.Unmarshal([]byte(raw), &im); err != nil || len(im.Manifests) != 2 || im.MediaType != "application/vnd.oci.image.index.v1+json" {
			t.Errorf("skopeo inspect --raw: %v\n%s", err, raw)
		}
		var arm struct{ Architecture, Digest string }
		out := skopeo(t, "inspect", "--override-arch", "arm64", "--tls-verify=false", "docker://"+ref)
		if err := json.Unmarshal([]byte(out), &arm); err != nil || arm.Architecture != "arm64" {
			t.Errorf("skopeo inspect --override-arch arm64: %v\n%s", err, out)
		}
	}

	// builder run --platform linux/arm64 runs the arm64 image (emulated).
	var stdout, stderr bytes.Buffer
	code, err := run.Run(context.Background(), RunOptions{Image: ref, Root: root, Remove: true, Platform: "linux/arm64", Pull: "never", Args: []string{"uname", "-m"}},
		RunIO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	if err != nil || code != 0 || stdout.String() != "aarch64\n" {
		t.Errorf("run --platform linux/arm64: %d %v, stdout %q stderr %q", code, err, stdout.String(), stderr.String())
	}

	_, err = run.Run(context.Background(), RunOptions{Image: ref, Root: root, Remove: true, Platform: "linux/s390x", Pull: "never", Args: []string{"true"}},
		RunIO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
	if err == nil || !strings.Contains(err.Error(), "no image for platform linux/s390x (available: linux/amd64, linux/arm64)") {
		t.Errorf("run --platform linux/s390x: %v", err)
	}

	// The local store shows the index once; inspect lists both platforms.
	images, err := openImageStoreForTest(t, root)
	if err != nil {
		t.Fatal(err)
	}
	all, err := images.List()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(imagestore.Rows(all, "")); n != 1 {
		t.Errorf("images lists %d rows, want the index once: %+v", n, all)
	}
	x, err := images.Inspect(ref)
	if err != nil {
		t.Fatal(err)
	}
	if x.ID != dgst || len(x.Platforms) != 2 || x.Platforms[0].Platform.Architecture != "amd64" || x.Platforms[1].Platform.Architecture != "arm64" {
		t.Errorf("inspect: id %s, platforms %+v; want %s with amd64 and arm64", x.ID, x.Platforms, dgst)
	}

	// builder push of the stored index, and save --format oci of it.
	var pushOut, pushStdout bytes.Buffer
	if err := Push(context.Background(), root, "plain", RegistryFlags{}, ref, []string{host + "/copy:1"}, &pushOut, &pushStdout); err != nil {
		t.Fatalf("builder push: %v\n%s", err, pushOut.String())
	}
	if !strings.Contains(pushStdout.String(), dgst) {
		t.Errorf("builder push of the index: %q, want its digest %s", pushStdout.String(), dgst)
	}
	if _, err := exec.LookPath("skopeo"); err == nil {
		var im v1.IndexManifest
		if raw := skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+host+"/copy:1"); json.Unmarshal([]byte(raw), &im) != nil || len(im.Manifests) != 2 {
			t.Errorf("pushed copy: %s", raw)
		}
	}
	saved := filepath.Join(t.TempDir(), "saved.tar")
	save := newSaveCommand()
	save.SetArgs([]string{"--root", root, "--format", "oci", "-o", saved, ref})
	if err := save.Execute(); err != nil {
		t.Fatalf("save --format oci: %v", err)
	}
	checkOCIIndex(t, saved, dgst, want)
	save = newSaveCommand()
	save.SetArgs([]string{"--root", root, "-o", saved, ref})
	save.SilenceUsage, save.SilenceErrors = true, true
	if err := save.Execute(); err == nil || !strings.Contains(err.Error(), "multi-platform image") {
		t.Errorf("docker-format save of an index: %v", err)
	}

	// A second identical build: every step cached, the same index.
	progress2, m2 := build()
	if m2["containerimage.digest"] != dgst {
		t.Errorf("second build: index %v, want %s", m2["containerimage.digest"], dgst)
	}
	steps, _ := m2["builder.steps"].([]any)
	built := 0
	for _, x := range steps {
		st, _ := x.(map[string]any)
		name, _ := st["name"].(string)
		if !strings.HasPrefix(name, "[linux/") {
			continue // [internal] steps, exporting, pushing
		}
		built++
		if st["cached"] != true {
			t.Errorf("second build: step %q not cached\n%s", name, progress2)
		}
	}
	if built < 8 {
		t.Errorf("second build: %d build steps in the metadata, want the 8 of both platforms:\n%s", built, progress2)
	}
}

// TestMultiPlatformFlag: --platform lists are parsed as buildx does (the
// library refuses outputs that hold one image: see build's
// TestValidateRequest).
func TestMultiPlatformFlag(t *testing.T) {
	for _, tt := range []struct {
		platform string
		want     int
		err      string
	}{
		{"", 0, ""},
		{"linux/amd64,linux/arm64", 2, ""},
		{"linux/arm64,linux/aarch64", 1, ""},
		{"linux/amd64,bogus", 0, `--platform: unknown operating system or architecture in platform "bogus"`},
	} {
		req, err := BuildOptions{Platform: tt.platform}.request()
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: %v, want error %q", tt.platform, err, tt.err)
			}
			continue
		}
		if err != nil || len(req.Platforms) != tt.want {
			t.Errorf("%q: %v, %v; want %d platforms", tt.platform, req.Platforms, err, tt.want)
		}
	}
}

// stepIDs counts the distinct steps ("#N" of plain progress) whose name
// matches re.
func stepIDs(progress, re string) int {
	ids := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#(\d+) `+re).FindAllStringSubmatch(progress, -1) {
		ids[m[1]] = true
	}
	return len(ids)
}

func skopeo(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("skopeo", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// checkOCIIndex reads the OCI layout tar at p: index.json names the index
// digest dgst, whose manifests carry their platforms and whose images have
// the config architecture and the files of want[arch].
func checkOCIIndex(t *testing.T, p, dgst string, want map[string]map[string]string) {
	t.Helper()
	inner := readOCIIndexTar(t, p)
	if d, err := inner.Digest(); err != nil || d.String() != dgst {
		t.Fatalf("index.json points to index %s (%v), want %s", d, err, dgst)
	}
	im, err := inner.IndexManifest()
	if err != nil || len(im.Manifests) != len(want) {
		t.Fatalf("index: %v, %d manifests, want %d", err, len(im.Manifests), len(want))
	}
	for _, d := range im.Manifests {
		if d.Platform == nil {
			t.Fatalf("manifest %s has no platform", d.Digest)
		}
		files := want[d.Platform.Architecture]
		img, err := inner.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil || cfg.Architecture != d.Platform.Architecture || cfg.OS != "linux" {
			t.Errorf("%s: config %v os/arch %s/%s", d.Platform.Architecture, err, cfg.OS, cfg.Architecture)
		}
		got := map[string]string{}
		fs := tar.NewReader(mutate.Extract(img))
		for {
			h, err := fs.Next()
			if err != nil {
				break
			}
			name := strings.TrimPrefix(h.Name, "/")
			if _, ok := files[name]; ok {
				b, _ := io.ReadAll(fs)
				got[name] = string(b)
			}
		}
		for k, v := range files {
			if got[k] != v {
				t.Errorf("%s: /%s = %q, want %q", d.Platform.Architecture, k, got[k], v)
			}
		}
	}
}

// openImageStoreForTest opens ROOT's image store (closing the root at
// the test's end).
func openImageStoreForTest(t *testing.T, root string) (*imagestore.Store, error) {
	r, err := state.Open(root, state.Options{Lock: state.LockShared})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { r.Close() })
	return r.Images()
}
