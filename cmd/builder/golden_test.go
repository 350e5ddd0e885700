package main

// The golden suite builds every case in testdata/dockerfiles end to end (the
// real frontend, solver, snapshotter, executor, registry and exporter) and
// compares the resulting image with expected files that were derived by hand
// from BuildKit's semantics (dockerfile2llb, fsutil copy, the overlay differ
// and containerd's tar writer):
//
//	testdata/dockerfiles/<case>/
//	  Dockerfile    passed with -f (it is not part of the context)
//	  context/      the build context (copied to a temp dir first, with
//	                normalized modes: git keeps only the executable bit)
//	  args.txt      optional: K=V build args, one a line; "--target=x";
//	                "--secret=...", "--ssh=...", "--build-context=..." as
//	                on the command line, $CASE replaced by the case dir
//	  layers.txt    the tar entries of every layer after the base image's
//	  config.json   the image config fields that must match BuildKit
//	  error.txt     for failing cases instead: substrings of the error,
//	                one a line
//
// The harness always passes BASE=<registry>/busybox:latest and
// BASE_DIGEST=<registry>/busybox@sha256:... (the registrytest busybox image
// pushed to an in-process registry). Run with -update to rewrite the
// expected files from the current output: only do so after checking the
// diff against BuildKit's behaviour.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/registry/registrytest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

var update = flag.Bool("update", false, "rewrite the expected files of testdata/dockerfiles")

const casesDir = "../../testdata/dockerfiles"

// goldenEnv is what every case builds against.
type goldenEnv struct {
	base     v1.Image
	baseArgs map[string]string
	// remote fills ${HTTP_SERVER} and ${GIT_SERVER} in args.txt values
	// (see golden_remote_test.go).
	remote *remoteServers
}

func requireRootOverlay(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end builds are slow; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("end-to-end builds need root")
	}
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil || !bytes.Contains(data, []byte("overlay")) {
		t.Skip("end-to-end builds need overlayfs")
	}
	if _, err := os.Stat(registrytest.BusyboxPath); err != nil {
		t.Skipf("base image needs %s: %v", registrytest.BusyboxPath, err)
	}
}

// newGoldenEnv starts an in-process registry and pushes the busybox base.
func newGoldenEnv(t *testing.T) *goldenEnv {
	t.Helper()
	host := registrytest.NewInProcess(t)
	base, err := registrytest.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	tagged := host + "/busybox:latest"
	pinned := registrytest.Push(t, base, tagged)
	return &goldenEnv{
		base:     base,
		baseArgs: map[string]string{"BASE": tagged, "BASE_DIGEST": pinned},
		remote:   newRemoteServers(t),
	}
}

// goldenCase is one directory of testdata/dockerfiles.
type goldenCase struct {
	name   string
	dir    string
	args   map[string]string
	target string
	// flags are the --secret/--ssh/--build-context lines of args.txt.
	flags []string
}

func loadCase(t *testing.T, dir string) goldenCase {
	t.Helper()
	c := goldenCase{name: filepath.Base(dir), dir: dir, args: map[string]string{}}
	data, err := os.ReadFile(filepath.Join(dir, "args.txt"))
	if errors.Is(err, fs.ErrNotExist) {
		return c
	}
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "--target="):
			c.target = strings.TrimPrefix(line, "--target=")
		case strings.HasPrefix(line, "--"):
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatal(err)
			}
			c.flags = append(c.flags, strings.ReplaceAll(line, "$CASE", abs))
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || k == "" {
				t.Fatalf("%s/args.txt:%d: %q is not K=V", dir, i+1, line)
			}
			c.args[k] = v
		}
	}
	return c
}

// copyContext copies src to dst with normalized permissions (0755 for
// directories and executables, 0644 for other files), so that the result
// does not depend on the checkout's umask.
func copyContext(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			mode := fs.FileMode(0o644)
			if info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			if err := os.WriteFile(target, data, mode); err != nil {
				return err
			}
			return os.Chmod(target, mode)
		default:
			return fmt.Errorf("%s: unsupported file type %s", p, d.Type())
		}
	})
	if err != nil {
		t.Fatalf("copying context %s: %v", src, err)
	}
}

// buildRun is the outcome of one build.
type buildRun struct {
	img      v1.Image
	progress string
	err      error
}

// build runs one build of c with the context in ctxDir and state in root.
func (e *goldenEnv) build(t *testing.T, c goldenCase, ctxDir, root string) buildRun {
	t.Helper()
	args := map[string]string{}
	for k, v := range e.baseArgs {
		args[k] = v
	}
	for k, v := range c.args {
		args[k] = e.remote.expand(t, c, v)
	}
	out := filepath.Join(t.TempDir(), "out.tar")
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	o := BuildOptions{
		ContextDir: ctxDir,
		Dockerfile: filepath.Join(c.dir, "Dockerfile"),
		Tags:       []string{"golden/" + c.name + ":latest"},
		BuildArgs:  args,
		Target:     c.target,
		Progress:   "plain",
		Outputs:    []Output{{Type: "oci", Dest: out, Attrs: map[string]string{}}},
		Root:       root,
	}
	for _, f := range c.flags {
		k, v, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		switch k {
		case "secret":
			o.Secrets = append(o.Secrets, v)
		case "ssh":
			o.SSH = append(o.SSH, v)
		case "build-context":
			o.BuildContexts = append(o.BuildContexts, v)
		default:
			t.Fatalf("%s/args.txt: unknown flag %q", c.dir, f)
		}
	}
	err := Build(ctx, o, &progress)
	r := buildRun{progress: progress.String(), err: err}
	if err != nil {
		return r
	}
	img, err := readOCITar(t, out)
	if err != nil {
		r.err = fmt.Errorf("reading the exported image %s: %w", out, err)
		return r
	}
	if err := validate.Image(img); err != nil {
		r.err = fmt.Errorf("the exported image is invalid: %w", err)
		return r
	}
	r.img = img
	return r
}

// readOCITar extracts an OCI layout tarball and returns its only image.
func readOCITar(t *testing.T, path string) (v1.Image, error) {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		name := filepath.Clean(hdr.Name)
		if !filepath.IsLocal(name) {
			return nil, fmt.Errorf("entry %q escapes the layout", hdr.Name)
		}
		target := filepath.Join(dir, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return nil, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return nil, err
			}
			w, err := os.Create(target)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(w, tr)
			w.Close()
			if err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("entry %q: unexpected type %q in an OCI layout", hdr.Name, hdr.Typeflag)
		}
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(im.Manifests) != 1 {
		return nil, fmt.Errorf("index.json has %d manifests, want 1", len(im.Manifests))
	}
	return idx.Image(im.Manifests[0].Digest)
}

// baseLayerCount is how many of img's first layers are the base image's.
func baseLayerCount(base, img v1.Image) (int, error) {
	bl, err := base.Layers()
	if err != nil {
		return 0, err
	}
	il, err := img.Layers()
	if err != nil {
		return 0, err
	}
	n := 0
	for n < len(bl) && n < len(il) {
		bd, err := bl[n].DiffID()
		if err != nil {
			return 0, err
		}
		id, err := il[n].DiffID()
		if err != nil {
			return 0, err
		}
		if bd != id {
			break
		}
		n++
	}
	return n, nil
}

// layersText renders the tar entries of img's layers after the first skip.
func layersText(img v1.Image, skip int) (string, error) {
	layers, err := img.Layers()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i, l := range layers[skip:] {
		fmt.Fprintf(&b, "# layer %d\n", i+1)
		if err := writeLayerEntries(&b, l); err != nil {
			return "", fmt.Errorf("layer %d: %w", skip+i, err)
		}
	}
	return b.String(), nil
}

func writeLayerEntries(w io.Writer, l v1.Layer) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		sum := "-"
		if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA {
			h := sha256.New()
			if _, err := io.Copy(h, tr); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
			sum = hex.EncodeToString(h.Sum(nil))[:12]
		}
		line := fmt.Sprintf("%s %c %04o %d:%d %d %s", hdr.Name, typeChar(hdr.Typeflag), hdr.Mode&0o7777, hdr.Uid, hdr.Gid, hdr.Size, sum)
		if hdr.Typeflag == tar.TypeSymlink || hdr.Typeflag == tar.TypeLink {
			line += " -> " + hdr.Linkname
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
}

func typeChar(t byte) byte {
	switch t {
	case tar.TypeReg, tar.TypeRegA:
		return 'f'
	case tar.TypeDir:
		return 'd'
	case tar.TypeSymlink:
		return 'l'
	case tar.TypeLink:
		return 'h'
	case tar.TypeChar:
		return 'c'
	case tar.TypeBlock:
		return 'b'
	case tar.TypeFifo:
		return 'p'
	default:
		return '?'
	}
}

// configFields are the container config fields that must match BuildKit.
var configFields = []string{
	"User", "Env", "Cmd", "Entrypoint", "WorkingDir", "ExposedPorts", "Volumes",
	"Labels", "StopSignal", "Healthcheck", "OnBuild", "Shell", "ArgsEscaped",
}

// configText reduces img's config to what must match BuildKit: no times, no
// rootfs digests, only the history after the base image's.
func configText(base, img v1.Image, newLayers int) (string, error) {
	raw, err := img.RawConfigFile()
	if err != nil {
		return "", err
	}
	var full map[string]json.RawMessage
	if err := json.Unmarshal(raw, &full); err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	out := map[string]any{}
	for _, k := range []string{"architecture", "os", "author"} {
		if v, ok := full[k]; ok {
			out[k] = v
		}
	}
	if c, ok := full["config"]; ok {
		var cfg map[string]json.RawMessage
		if err := json.Unmarshal(c, &cfg); err != nil {
			return "", fmt.Errorf("config.config: %w", err)
		}
		reduced := map[string]json.RawMessage{}
		for _, k := range configFields {
			if v, ok := cfg[k]; ok && string(v) != "null" {
				reduced[k] = v
			}
		}
		out["config"] = reduced
	}

	type hist struct {
		CreatedBy  string `json:"created_by,omitempty"`
		Comment    string `json:"comment,omitempty"`
		EmptyLayer bool   `json:"empty_layer,omitempty"`
	}
	var histories struct {
		History []hist `json:"history"`
	}
	if err := json.Unmarshal(raw, &histories); err != nil {
		return "", fmt.Errorf("config.history: %w", err)
	}
	skip := 0
	if base != nil {
		bcf, err := base.ConfigFile()
		if err != nil {
			return "", err
		}
		for skip < len(bcf.History) && skip < len(histories.History) {
			bh, h := bcf.History[skip], histories.History[skip]
			if bh.CreatedBy != h.CreatedBy || bh.EmptyLayer != h.EmptyLayer || bh.Comment != h.Comment {
				break
			}
			skip++
		}
	}
	h := histories.History[skip:]
	if h == nil {
		h = []hist{}
	}
	out["history"] = h
	out["layers"] = newLayers

	// Round-trip through any so that every map is printed with sorted keys.
	data, err := json.Marshal(out)
	if err != nil {
		return "", err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return "", err
	}
	var pretty bytes.Buffer
	enc := json.NewEncoder(&pretty)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(generic); err != nil {
		return "", err
	}
	return pretty.String(), nil
}

// compareGolden compares got with the file, or rewrites it with -update.
func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: %v (run with -update to create it, after checking the output against BuildKit)\ngot:\n%s", path, err, got)
		return
	}
	if string(want) != got {
		t.Errorf("%s differs (-want +got):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff is a small LCS line diff, enough for golden files.
func lineDiff(a, b string) string {
	x := strings.Split(strings.TrimSuffix(a, "\n"), "\n")
	y := strings.Split(strings.TrimSuffix(b, "\n"), "\n")
	n, m := len(x), len(y)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			out.WriteString("  " + x[i] + "\n")
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			out.WriteString("+ " + y[j] + "\n")
			j++
		default:
			out.WriteString("- " + x[i] + "\n")
			i++
		}
	}
	return out.String()
}

func caseDirs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(casesDir)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(casesDir, e.Name()))
		}
	}
	sort.Strings(dirs)
	if len(dirs) == 0 {
		t.Fatalf("no cases in %s", casesDir)
	}
	return dirs
}

// TestGolden builds every case and compares the image with its expected
// files.
func TestGolden(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	for _, dir := range caseDirs(t) {
		c := loadCase(t, dir)
		t.Run(c.name, func(t *testing.T) {
			ctxDir := t.TempDir()
			if _, err := os.Stat(filepath.Join(dir, "context")); err == nil {
				copyContext(t, filepath.Join(dir, "context"), ctxDir)
			}
			r := env.build(t, c, ctxDir, t.TempDir())
			errFile := filepath.Join(dir, "error.txt")
			if want, err := os.ReadFile(errFile); err == nil {
				// Each line of error.txt is a substring the error must
				// contain (BuildKit tests often check several).
				wantErrs := strings.Split(strings.TrimSpace(string(want)), "\n")
				if r.err == nil {
					t.Fatalf("build succeeded, want an error containing %q\nprogress:\n%s", wantErrs, r.progress)
				}
				for _, wantErr := range wantErrs {
					// The message is printed to the progress output; the
					// returned error only carries the exit status.
					if !strings.Contains(r.err.Error(), wantErr) && !strings.Contains(r.progress, wantErr) {
						t.Fatalf("error %v: want it to contain %q\nprogress:\n%s", r.err, wantErr, r.progress)
					}
				}
				return
			}
			if r.err != nil {
				t.Fatalf("build: %v\nprogress:\n%s", r.err, r.progress)
			}
			skip, err := baseLayerCount(env.base, r.img)
			if err != nil {
				t.Fatal(err)
			}
			layers, err := layersText(r.img, skip)
			if err != nil {
				t.Fatal(err)
			}
			all, err := r.img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			base := env.base
			if skip == 0 {
				base = nil
			}
			cfg, err := configText(base, r.img, len(all)-skip)
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, filepath.Join(dir, "layers.txt"), layers)
			compareGolden(t, filepath.Join(dir, "config.json"), env.remote.unexpand(cfg))
			if t.Failed() {
				t.Logf("progress:\n%s", r.progress)
			}
		})
	}
}

// stepStates parses plain progress output into the final state of each
// Dockerfile step ("CACHED", "DONE" or "ERROR"), by step name.
func stepStates(progress string) map[string]string {
	header := regexp.MustCompile(`^#(\d+) (.*)$`)
	names := map[string]string{}
	states := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(progress))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := header.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		id, rest := m[1], m[2]
		name, ok := names[id]
		if !ok {
			names[id] = rest
			continue
		}
		switch {
		case rest == "CACHED":
			states[name] = "CACHED"
		case strings.HasPrefix(rest, "DONE"):
			states[name] = "DONE"
		case strings.HasPrefix(rest, "ERROR"):
			states[name] = "ERROR"
		}
	}
	steps := map[string]string{}
	instr := regexp.MustCompile(`\] (RUN|COPY|ADD|WORKDIR) `)
	for name, st := range states {
		if instr.MatchString(name) {
			steps[name] = st
		}
	}
	return steps
}

func layerDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		id, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.String()+"/"+id.String())
	}
	return out
}

// TestGoldenCache rebuilds the cache case with the same --root: unchanged,
// with only a context file's mtime touched, and with one file changed.
func TestGoldenCache(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	c := loadCase(t, filepath.Join(casesDir, "cache"))
	ctxDir := t.TempDir()
	copyContext(t, filepath.Join(c.dir, "context"), ctxDir)
	root := t.TempDir()

	build := func(what string) buildRun {
		t.Helper()
		r := env.build(t, c, ctxDir, root)
		if r.err != nil {
			t.Fatalf("%s: %v\nprogress:\n%s", what, r.err, r.progress)
		}
		return r
	}
	first := build("first build")
	firstSteps := stepStates(first.progress)
	if len(firstSteps) != 4 {
		t.Fatalf("first build: want 4 RUN/COPY steps, got %v\nprogress:\n%s", firstSteps, first.progress)
	}
	for name, st := range firstSteps {
		if st != "DONE" {
			t.Errorf("first build: step %q is %s, want DONE", name, st)
		}
	}
	want := layerDigests(t, first.img)

	checkAll := func(what string, r buildRun) {
		t.Helper()
		steps := stepStates(r.progress)
		if len(steps) != len(firstSteps) {
			t.Errorf("%s: steps %v, want the same %d steps as the first build", what, steps, len(firstSteps))
		}
		for name, st := range steps {
			if st != "CACHED" {
				t.Errorf("%s: step %q is %s, want CACHED\nprogress:\n%s", what, name, st, r.progress)
			}
		}
		if got := layerDigests(t, r.img); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: layers differ from the first build:\n%s", what, lineDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
		}
		// A fully cached rebuild is the same image, as in BuildKit: the
		// history times come from the cached results, not the clock.
		if got, want := imageDigest(t, r.img), imageDigest(t, first.img); got != want {
			cf1, _ := first.img.RawConfigFile()
			cf2, _ := r.img.RawConfigFile()
			t.Errorf("%s: image digest %s, want the first build's %s\nconfig diff:\n%s", what, got, want, lineDiff(string(cf1), string(cf2)))
		}
	}
	checkAll("second build", build("second build"))

	// Only the mtime changes: content-based cache keys must not notice.
	future := time.Now().Add(time.Hour)
	for _, f := range []string{"a.txt", "b.txt"} {
		if err := os.Chtimes(filepath.Join(ctxDir, f), future, future); err != nil {
			t.Fatal(err)
		}
	}
	checkAll("build after touching a.txt and b.txt", build("build after touch"))

	// b.txt is read by the third step: the first two stay cached.
	if err := os.WriteFile(filepath.Join(ctxDir, "b.txt"), []byte("b changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := build("build after changing b.txt")
	steps := stepStates(r.progress)
	if len(steps) != len(firstSteps) {
		t.Fatalf("after changing b.txt: steps %v\nprogress:\n%s", steps, r.progress)
	}
	for name, st := range steps {
		wantSt := "CACHED"
		if strings.Contains(name, "b.txt") {
			wantSt = "DONE"
		}
		if st != wantSt {
			t.Errorf("after changing b.txt: step %q is %s, want %s", name, st, wantSt)
		}
	}
	got := layerDigests(t, r.img)
	if len(got) != len(want) {
		t.Fatalf("after changing b.txt: %d layers, want %d", len(got), len(want))
	}
	// Layers: base, COPY a.txt, RUN a, COPY b.txt, RUN b.
	for i := range got {
		same := got[i] == want[i]
		if wantSame := i < 3; same != wantSame {
			t.Errorf("after changing b.txt: layer %d unchanged=%v, want %v", i, same, wantSame)
		}
	}
}

// imageDigest is the manifest digest of img.
func imageDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
