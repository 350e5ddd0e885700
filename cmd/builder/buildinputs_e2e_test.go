package main

// End-to-end tests of the build inputs that do not fit the golden format:
// secrets (checked for leaks everywhere a build writes), an ssh agent
// forwarded from a socket of the test, --build-context images from a
// registry and an OCI layout, a context or Dockerfile on stdin, and the
// RUN network modes.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/registrytest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// e2eBuild runs Build with an OCI tar output and returns the image (nil
// on error), the progress output and the output tar's path.
func e2eBuild(t *testing.T, o BuildOptions) (v1.Image, string, string, error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.tar")
	o.Progress = "plain"
	o.Outputs = []Output{{Type: "oci", Dest: out, Attrs: map[string]string{}}}
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := Build(ctx, o, &progress); err != nil {
		return nil, progress.String(), out, err
	}
	img, err := readOCITar(t, out)
	if err != nil {
		return nil, progress.String(), out, fmt.Errorf("reading %s: %w", out, err)
	}
	return img, progress.String(), out, nil
}

// imageFiles returns the regular files of img's flattened filesystem.
func imageFiles(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(hdr.Name, "/")] = string(data)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func canary(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "canary-" + what + "-" + hex.EncodeToString(b)
}

// leakForms are the encodings a value could be stored in by mistake: as
// is, as hex, and base64 (encoding/json's form of a []byte).
func leakForms(secret string) [][]byte {
	return [][]byte{
		[]byte(secret),
		[]byte(hex.EncodeToString([]byte(secret))),
		[]byte(base64.StdEncoding.EncodeToString([]byte(secret))),
		[]byte(base64.RawURLEncoding.EncodeToString([]byte(secret))),
	}
}

// findLeaks reports where in data (and, when data is gzip, in its
// decompressed form) a form of a secret appears.
func findLeaks(where string, data []byte, secrets []string) []string {
	var found []string
	scan := func(what string, b []byte) {
		for _, s := range secrets {
			for _, f := range leakForms(s) {
				if bytes.Contains(b, f) {
					found = append(found, fmt.Sprintf("%s contains %q", what, f))
				}
			}
		}
	}
	scan(where, data)
	if len(data) > 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err == nil {
			plain, err := io.ReadAll(zr)
			if err != nil {
				found = append(found, fmt.Sprintf("%s: gzip: %v", where, err))
			}
			scan(where+" (gunzipped)", plain)
		}
	}
	return found
}

// leaksInOCITar scans every entry of an OCI layout tarball (index,
// manifests, config, layers decompressed).
func leaksInOCITar(t *testing.T, path string, secrets []string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	found := findLeaks(path, raw, secrets)
	tr := tar.NewReader(bytes.NewReader(raw))
	n := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		n++
		found = append(found, findLeaks(path+":"+hdr.Name, data, secrets)...)
	}
	if n < 4 {
		t.Fatalf("%s has %d entries: not an OCI layout with an image", path, n)
	}
	return found
}

// leaksInTree scans every regular file under root (gzip blobs
// decompressed) and every symlink target.
func leaksInTree(t *testing.T, root string, secrets []string) []string {
	t.Helper()
	var found []string
	files := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if strings.Contains(d.Name(), s) {
				found = append(found, "file name "+p)
			}
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			found = append(found, findLeaks("symlink "+p, []byte(l), secrets)...)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files++
			found = append(found, findLeaks(p, data, secrets)...)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	if files < 10 {
		t.Fatalf("only %d files under %s: the walk missed the build's state", files, root)
	}
	return found
}

// TestSecretsDoNotLeak builds with a file secret and an env secret, read
// by RUN --mount=type=secret as a file and as env, and checks that no form
// of either value reaches the output image (any blob), the state under
// --root (blobs, snapshots, cache keys and metadata, the image store),
// the progress output or the image config; then changes both values and
// checks that the steps stay CACHED, as in BuildKit (a secret mount's cache
// key holds its id, never its value) and that the new values do not leak
// either.
func TestSecretsDoNotLeak(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	root := t.TempDir()
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": `ARG BASE
FROM $BASE
RUN --mount=type=secret,id=s md5sum < /run/secrets/s | cut -d' ' -f1 > /file-md5 && echo read the file secret
RUN --mount=type=secret,id=e,env=TOKEN printf %s "$TOKEN" | md5sum | cut -d' ' -f1 > /env-md5
RUN --mount=type=secret,id=s,env=FROMFILE,target=/etc/s test "$FROMFILE" = "$(cat /etc/s)" && printf %s "$FROMFILE" | md5sum | cut -d' ' -f1 > /file-env-md5
RUN --mount=type=secret,id=s,env=S ls -la /run /run/secrets 2>&1 | wc -l > /seen && env | grep -c '^S=' >> /seen || true
ENV AFTER=1
`})
	secretDir := t.TempDir()
	secretFile := filepath.Join(secretDir, "s.txt")
	const envVar = "BUILDER_TEST_LEAK_SECRET"

	build := func(what, fileVal, envVal string) (v1.Image, string) {
		t.Helper()
		if err := os.WriteFile(secretFile, []byte(fileVal), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv(envVar, envVal)
		img, progress, out, err := e2eBuild(t, BuildOptions{
			ContextDir: ctxDir,
			Root:       root,
			Tags:       []string{"leak/test:latest"},
			BuildArgs:  env.baseArgs,
			Secrets:    []string{"id=s,src=" + secretFile, "id=e,env=" + envVar},
		})
		if err != nil {
			t.Fatalf("%s: %v\nprogress:\n%s", what, err, progress)
		}
		secrets := []string{fileVal, envVal}
		var leaks []string
		leaks = append(leaks, findLeaks("progress output", []byte(progress), secrets)...)
		leaks = append(leaks, leaksInOCITar(t, out, secrets)...)
		leaks = append(leaks, leaksInTree(t, root, secrets)...)
		raw, err := img.RawConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		leaks = append(leaks, findLeaks("image config", raw, secrets)...)
		rawManifest, err := img.RawManifest()
		if err != nil {
			t.Fatal(err)
		}
		leaks = append(leaks, findLeaks("image manifest", rawManifest, secrets)...)
		for _, l := range leaks {
			t.Errorf("%s: secret leaked: %s", what, l)
		}
		// The secret env vars are not part of the image config.
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range cf.Config.Env {
			if strings.HasPrefix(e, "TOKEN=") || strings.HasPrefix(e, "FROMFILE=") || strings.HasPrefix(e, "S=") {
				t.Errorf("%s: the image config has the secret env %q", what, e)
			}
		}
		return img, progress
	}

	file1, env1 := canary(t, "file"), canary(t, "env")
	img, progress := build("first build", file1, env1)
	files := imageFiles(t, img)
	want := map[string]string{
		"file-md5":     md5hex(file1) + "\n",
		"env-md5":      md5hex(env1) + "\n",
		"file-env-md5": md5hex(file1) + "\n",
	}
	for name, body := range want {
		if files[name] != body {
			t.Errorf("first build: /%s = %q, want %q (the RUN did not see the secret)", name, files[name], body)
		}
	}
	// /seen: the listing had lines, and S was set in the RUN's env.
	if seen := strings.Fields(files["seen"]); len(seen) != 2 || seen[1] != "1" {
		t.Errorf("first build: /seen = %q, want a line count and 1", files["seen"])
	}
	if !strings.Contains(progress, "read the file secret") {
		t.Errorf("first build: the RUN's own output is missing from the progress:\n%s", progress)
	}
	first := stepStates(progress)
	if len(first) != 4 {
		t.Fatalf("first build: steps %v, want 4 RUN steps\nprogress:\n%s", first, progress)
	}
	firstLayers := layerDigests(t, img)

	// New values: BuildKit keys a secret mount by its id only, so every
	// step is CACHED and the image is the same.
	file2, env2 := canary(t, "file2"), canary(t, "env2")
	img2, progress2 := build("build with changed secrets", file2, env2)
	for name, st := range stepStates(progress2) {
		if st != "CACHED" {
			t.Errorf("build with changed secrets: step %q is %s, want CACHED\nprogress:\n%s", name, st, progress2)
		}
	}
	if got := layerDigests(t, img2); strings.Join(got, "\n") != strings.Join(firstLayers, "\n") {
		t.Errorf("build with changed secrets: layers differ:\n%s", lineDiff(strings.Join(firstLayers, "\n"), strings.Join(got, "\n")))
	}
	// The first values are gone from the state too.
	for _, l := range leaksInTree(t, root, []string{file1, env1}) {
		t.Errorf("after the second build: first secret leaked: %s", l)
	}
	// Nothing of the secrets' temporary files stays under --root.
	checkEmptyTmp(t, root)
	if secretsLeft, _ := os.ReadDir(secretDir); len(secretsLeft) != 1 {
		t.Errorf("%s changed: %v", secretDir, secretsLeft)
	}
}

// fakeAgent is a unix socket server that answers every connection with a
// fixed reply after reading a request line.
type fakeAgent struct {
	path  string
	conns atomic.Int32
}

const fakeAgentReply = "fake-agent-reply-7f3a"

func startFakeAgent(t *testing.T) *fakeAgent {
	t.Helper()
	a := &fakeAgent{path: filepath.Join(t.TempDir(), "agent.sock")}
	ln, err := net.Listen("unix", a.path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.conns.Add(1)
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				buf := make([]byte, 64)
				c.Read(buf)
				io.WriteString(c, fakeAgentReply)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return a
}

// agentClient builds a static program that connects to $SSH_AUTH_SOCK,
// sends a line and prints the reply: busybox nc cannot speak to unix
// sockets.
func agentClient(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"go.mod": "module agentclient\n\ngo 1.21\n", "main.go": `package main

import (
	"io"
	"net"
	"os"
)

func main() {
	c, err := net.Dial("unix", os.Getenv("SSH_AUTH_SOCK"))
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	io.WriteString(c, "hello\n")
	c.(*net.UnixConn).CloseWrite()
	io.Copy(os.Stdout, c)
}
`})
	bin := filepath.Join(dir, "agent-client")
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the agent client: %v\n%s", err, out)
	}
	return bin
}

// TestSSHAgentForwarding forwards a fake agent with --ssh default=SOCKET:
// RUN --mount=type=ssh sees a socket at BuildKit's default target
// (/run/buildkit/ssh_agent.N, N counting ssh mounts only) with mode 0600,
// SSH_AUTH_SOCK points to it, and a client in the RUN gets the agent's
// reply through it. A required mount of an id that was not forwarded
// fails; an optional one is left out. The mode=741,uid=100,gid=102 step is
// BuildKit's testSSHSocketParams (dockerfile_ssh_test.go).
func TestSSHAgentForwarding(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	agent := startFakeAgent(t)
	client := agentClient(t)
	ctxDir := t.TempDir()
	data, err := os.ReadFile(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "agent-client"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": `ARG BASE
FROM $BASE
RUN --mount=type=ssh test -S /run/buildkit/ssh_agent.0 && stat -c %a:%u:%g /run/buildkit/ssh_agent.0 > /mode && echo "$SSH_AUTH_SOCK" > /sock
RUN --mount=type=secret,id=nothing --mount=type=bind,source=agent-client,target=/usr/bin/agent-client --mount=type=ssh,mode=0644,uid=5 stat -c %a:%u "$SSH_AUTH_SOCK" > /mode2 && echo "$SSH_AUTH_SOCK" > /sock2 && agent-client > /reply
RUN --mount=type=ssh,id=other ! test -e /run/buildkit/ssh_agent.0 && echo "[$SSH_AUTH_SOCK]" > /optional
RUN --mount=type=ssh,target=/tmp/agent,required=true test -S /tmp/agent && echo "$SSH_AUTH_SOCK" > /sock3
RUN --mount=type=ssh,mode=741,uid=100,gid=102 [ "$(stat -c "%u %g %f" $SSH_AUTH_SOCK)" = "100 102 c1e1" ]
`})
	root := t.TempDir()
	img, progress, _, err := e2eBuild(t, BuildOptions{
		ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs,
		SSH: []string{"default=" + agent.path},
	})
	if err != nil {
		t.Fatalf("build: %v\nprogress:\n%s", err, progress)
	}
	files := imageFiles(t, img)
	want := map[string]string{
		"mode":     "600:0:0\n",
		"sock":     "/run/buildkit/ssh_agent.0\n",
		"mode2":    "644:5\n",
		"sock2":    "/run/buildkit/ssh_agent.0\n",
		"reply":    fakeAgentReply,
		"optional": "[]\n",
		"sock3":    "/tmp/agent\n",
	}
	for name, body := range want {
		if files[name] != body {
			t.Errorf("/%s = %q, want %q", name, files[name], body)
		}
	}
	if n := agent.conns.Load(); n != 1 {
		t.Errorf("the agent got %d connections, want 1", n)
	}
	if _, err := os.Stat(agent.path); err != nil {
		t.Errorf("the host agent socket: %v", err)
	}
	// No mount point or proxy socket stays in a layer.
	for name := range files {
		if strings.Contains(name, "ssh_agent") || strings.HasPrefix(name, "tmp/agent") {
			t.Errorf("layer file %s", name)
		}
	}

	// A required id that was not forwarded.
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": `ARG BASE
FROM $BASE
RUN --mount=type=ssh,id=gitlab,required=true true
`})
	_, progress, _, err = e2eBuild(t, BuildOptions{
		ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs,
		SSH: []string{"default=" + agent.path},
	})
	if err == nil || !strings.Contains(progress, `"gitlab"`) {
		t.Errorf("required ssh id not forwarded: error %v, want one naming gitlab\nprogress:\n%s", err, progress)
	}
}

// TestBuildContextImages replaces a FROM and a COPY --from with
// --build-context name=docker-image://REF (an image of the in-process
// registry) and name=oci-layout://PATH:TAG (a layout written here).
func TestBuildContextImages(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	base := env.base

	// An image with an extra layer, pushed under another name and written
	// to an OCI layout with a tag.
	marker := func(name, body string) v1.Image {
		data := makeTar(t, []tarEntry{{name: name, typ: tar.TypeReg, body: body}})
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(base, l)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	regImg := marker("from-registry.txt", "registry image\n")
	host := strings.SplitN(env.baseArgs["BASE"], "/", 2)[0]
	registrytest.Push(t, regImg, host+"/contexts/regimg:1")

	layoutImg := marker("from-layout.txt", "layout image\n")
	layoutDir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(layoutImg, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	// A second tag, so that the tag has to be honoured.
	if err := lp.AppendImage(base, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "other"})); err != nil {
		t.Fatal(err)
	}

	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": `FROM mybase
COPY --from=layoutctx /from-layout.txt /copied-from-layout.txt
RUN --mount=from=layoutctx,target=/l cat /l/from-layout.txt /from-registry.txt > /both.txt
`})
	for _, tc := range []struct {
		name string
		ctxs []string
	}{
		{"docker-image and oci-layout", []string{
			"mybase=docker-image://" + host + "/contexts/regimg:1",
			"layoutctx=oci-layout://" + layoutDir + ":v1",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: ctxDir, Root: t.TempDir(), BuildContexts: tc.ctxs})
			if err != nil {
				t.Fatalf("build: %v\nprogress:\n%s", err, progress)
			}
			files := imageFiles(t, img)
			for name, body := range map[string]string{
				"from-registry.txt":      "registry image\n",
				"copied-from-layout.txt": "layout image\n",
				"both.txt":               "layout image\nregistry image\n",
			} {
				if files[name] != body {
					t.Errorf("/%s = %q, want %q", name, files[name], body)
				}
			}
			if _, ok := files["from-layout.txt"]; ok {
				t.Errorf("/from-layout.txt is in the image: the stage base came from the layout")
			}
			// The base layers are the registry image's.
			want, _ := regImg.Layers()
			got, _ := img.Layers()
			if len(got) < len(want) {
				t.Fatalf("%d layers, want at least the base's %d", len(got), len(want))
			}
			for i := range want {
				wd, _ := want[i].DiffID()
				gd, _ := got[i].DiffID()
				if wd != gd {
					t.Errorf("layer %d = %s, want the registry image's %s", i, gd, wd)
				}
			}
		})
	}

	t.Run("missing tag", func(t *testing.T) {
		_, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: ctxDir, Root: t.TempDir(), BuildContexts: []string{
			"mybase=docker-image://" + host + "/contexts/regimg:1",
			"layoutctx=oci-layout://" + layoutDir + ":v9",
		}})
		if err == nil || !strings.Contains(progress, `"v9"`) {
			t.Errorf("error %v, want one naming the missing tag v9\nprogress:\n%s", err, progress)
		}
	})
}

// TestStdinContextAndDockerfile builds a context tar from stdin (with -f
// naming a file inside it and its .dockerignore applied) and a Dockerfile
// from stdin with a directory context; nothing stays under ROOT/tmp.
func TestStdinContextAndDockerfile(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	root := t.TempDir()

	ctxTar := makeTar(t, []tarEntry{
		{name: "build/", typ: tar.TypeDir, mode: 0o755},
		{name: "build/app.Dockerfile", typ: tar.TypeReg, body: "ARG BASE\nFROM $BASE\nCOPY . /ctx/\n"},
		{name: ".dockerignore", typ: tar.TypeReg, body: "*.log\n"},
		{name: "a.txt", typ: tar.TypeReg, body: "a from tar\n"},
		{name: "skip.log", typ: tar.TypeReg, body: "ignored\n"},
		{name: "link", typ: tar.TypeSymlink, link: "a.txt"},
	})
	img, progress, _, err := e2eBuild(t, BuildOptions{
		ContextDir: "-", Dockerfile: "build/app.Dockerfile", Root: root, BuildArgs: env.baseArgs,
		Stdin: bytes.NewReader(ctxTar),
	})
	if err != nil {
		t.Fatalf("context from stdin: %v\nprogress:\n%s", err, progress)
	}
	skip, err := baseLayerCount(env.base, img)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := layersText(img, skip)
	if err != nil {
		t.Fatal(err)
	}
	wantLayers := `# layer 1
ctx/ d 0755 0:0 0 -
ctx/.dockerignore f 0644 0:0 6 ` + sha12("*.log\n") + `
ctx/a.txt f 0644 0:0 11 ` + sha12("a from tar\n") + `
ctx/build/ d 0755 0:0 0 -
ctx/build/app.Dockerfile f 0644 0:0 33 ` + sha12("ARG BASE\nFROM $BASE\nCOPY . /ctx/\n") + `
ctx/link l 0777 0:0 0 - -> a.txt
`
	if layers != wantLayers {
		t.Errorf("context from stdin: layers differ (-want +got):\n%s", lineDiff(wantLayers, layers))
	}
	checkEmptyTmp(t, root)

	dirCtx := t.TempDir()
	writeFiles(t, dirCtx, map[string]string{"b.txt": "b from dir\n", "Dockerfile": "FROM scratch\nCOPY a.txt /wrong\n"})
	img, progress, _, err = e2eBuild(t, BuildOptions{
		ContextDir: dirCtx, Dockerfile: "-", Root: root, BuildArgs: env.baseArgs,
		Stdin: strings.NewReader("ARG BASE\nFROM $BASE\nCOPY b.txt /from-stdin-dockerfile.txt\n"),
	})
	if err != nil {
		t.Fatalf("Dockerfile from stdin: %v\nprogress:\n%s", err, progress)
	}
	if got := imageFiles(t, img)["from-stdin-dockerfile.txt"]; got != "b from dir\n" {
		t.Errorf("Dockerfile from stdin: /from-stdin-dockerfile.txt = %q", got)
	}
	checkEmptyTmp(t, root)

	// A broken tar fails cleanly and leaves nothing either.
	_, progress, _, err = e2eBuild(t, BuildOptions{
		ContextDir: "-", Root: root, BuildArgs: env.baseArgs,
		Stdin: bytes.NewReader(ctxTar[:700]),
	})
	if err == nil || !strings.Contains(err.Error(), "unable to prepare context") {
		t.Errorf("truncated context tar: error %v\nprogress:\n%s", err, progress)
	}
	checkEmptyTmp(t, root)
}

func sha12(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])[:12]
}

func checkEmptyTmp(t *testing.T, root string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("left under %s/tmp: %v", root, entries)
	}
}

// TestRunNetworkModes checks RUN --network=none (only lo) and the default
// (the host's network, BuildKit's default without CNI) end to end.
func TestRunNetworkModes(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	ctxDir := t.TempDir()
	const list = `tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort`
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": `ARG BASE
FROM $BASE
RUN --network=none ` + list + ` > /none
RUN ` + list + ` > /default
RUN --network=default ` + list + ` > /default2
RUN --network=host ` + list + ` > /host
`})
	opts := BuildOptions{ContextDir: ctxDir, Root: t.TempDir(), BuildArgs: env.baseArgs}
	// RUN --network=host is an entitlement, as in BuildKit.
	if _, progress, _, err := e2eBuild(t, opts); err == nil || !strings.Contains(progress, "Dockerfile:6") || !strings.Contains(progress, "--allow network.host") {
		t.Fatalf("build without --allow network.host: err = %v, want the entitlement error at line 6; output:\n%s", err, progress)
	}
	opts.Sandbox.Allow = []string{"network.host"}
	img, progress, _, err := e2eBuild(t, opts)
	if err != nil {
		t.Fatalf("build: %v\nprogress:\n%s", err, progress)
	}
	files := imageFiles(t, img)
	if files["none"] != "lo\n" {
		t.Errorf("--network=none sees %q, want only lo", files["none"])
	}
	data, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	var host []string
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if i < 2 {
			continue
		}
		name, _, _ := strings.Cut(line, ":")
		host = append(host, strings.TrimSpace(name))
	}
	sort.Strings(host)
	want := strings.Join(host, "\n") + "\n"
	for _, f := range []string{"default", "default2", "host"} {
		if files[f] != want {
			t.Errorf("/%s = %q, want the host's interfaces %q", f, files[f], want)
		}
	}
}

// TestSecretsOnTmpfs: the file a secret mount shows a RUN lives on a
// memory filesystem (issue 12: never on a disk), and nothing of it stays
// under the root.
func TestSecretsOnTmpfs(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	root, ctxDir := t.TempDir(), t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": `ARG BASE
FROM $BASE
RUN --mount=type=secret,id=s awk '$5 == "/run/secrets/s" { for (i = 6; i <= NF; i++) if ($i == "-") print $(i+1) }' /proc/self/mountinfo > /fstype
`})
	secretFile := filepath.Join(t.TempDir(), "s")
	val := canary(t, "tmpfs")
	os.WriteFile(secretFile, []byte(val), 0o600)
	img, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs,
		Secrets: []string{"id=s,src=" + secretFile}})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress)
	}
	if got := imageFiles(t, img)["fstype"]; got != "tmpfs\n" {
		t.Errorf("the secret file is on %q, want tmpfs", got)
	}
	for _, l := range leaksInTree(t, root, []string{val}) {
		t.Errorf("secret under the root: %s", l)
	}
}

// TestStepLogsGuarded: a RUN's output is clipped per step with one clear
// line, secret values it prints (as they are and in base64) show as ****,
// terminal control sequences are stripped in plain mode, and --log-file
// has the whole log, masked too (issue 12).
func TestStepLogsGuarded(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	root, ctxDir := t.TempDir(), t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": `ARG BASE
FROM $BASE
RUN --mount=type=secret,id=tok echo "token: $(cat /run/secrets/tok)"; echo "b64: $(base64 < /run/secrets/tok)"; printf '\033[31mred\033[0m \033]0;title\007done\n'
RUN seq 1 400000 && echo never-shown-$((40+2))
`})
	secretFile := filepath.Join(t.TempDir(), "tok")
	val := canary(t, "logtoken")
	os.WriteFile(secretFile, []byte(val), 0o600)
	t.Setenv("BUILDKIT_STEP_LOG_MAX_SIZE", "65536")
	logFile := filepath.Join(t.TempDir(), "build.log")
	_, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs,
		Secrets: []string{"id=tok,src=" + secretFile}, LogFile: logFile})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress)
	}
	full, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"progress": progress, "--log-file": string(full)} {
		for _, l := range findLeaks(what, []byte(text), []string{val}) {
			t.Errorf("secret leaked: %s", l)
		}
		for _, want := range []string{"token: ****", "b64: ****", "red done"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: no %q", what, want)
			}
		}
		if strings.Contains(text, "\x1b") || strings.Contains(text, "\x07") {
			t.Errorf("%s: a terminal control sequence came through", what)
		}
	}
	if !strings.Contains(progress, "[output clipped, log limit 64KiB reached]") || strings.Contains(progress, "never-shown-42") {
		t.Errorf("the long step was not clipped:\n%s", progress[max(0, len(progress)-2000):])
	}
	if len(progress) > 200<<10 {
		t.Errorf("progress is %d bytes for a 64KiB limit", len(progress))
	}
	if !strings.Contains(string(full), "never-shown-42") || strings.Contains(string(full), "output clipped") {
		t.Errorf("--log-file is not the whole log (%d bytes)", len(full))
	}
}

// TestSecretMaskKeepsLines: a secret file ends in a newline, as most do;
// a RUN that prints it, twice, then another line shows each on its own
// progress line, the secret as ****, none joined to the next.
func TestSecretMaskKeepsLines(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	root, ctxDir := t.TempDir(), t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": `ARG BASE
FROM $BASE
RUN --mount=type=secret,id=tok cat /run/secrets/tok /run/secrets/tok; echo mid
`})
	secretFile := filepath.Join(t.TempDir(), "tok")
	val := canary(t, "linetoken")
	if err := os.WriteFile(secretFile, []byte(val+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs,
		Secrets: []string{"id=tok,src=" + secretFile}})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress)
	}
	for _, l := range findLeaks("progress", []byte(progress), []string{val}) {
		t.Errorf("secret leaked: %s", l)
	}
	// "#3 0.013 ****": the step's output lines, without number and time.
	var out []string
	for _, line := range strings.Split(progress, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || !strings.HasPrefix(f[0], "#") {
			continue
		}
		if _, err := strconv.ParseFloat(f[1], 64); err == nil {
			out = append(out, f[2])
		}
	}
	if want := []string{"****", "****", "mid"}; !slices.Equal(out, want) {
		t.Errorf("output lines %q, want %q\nprogress:\n%s", out, want, progress)
	}
}
