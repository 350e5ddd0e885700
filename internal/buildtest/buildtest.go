package buildtest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/builderdev/builder/internal/registrytest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// Update is the -update flag: CompareGolden rewrites the expected files
// instead of comparing.
var Update = flag.Bool("update", false, "rewrite the expected files of testdata")

// CasesDir is testdata/dockerfiles of the module, wherever the test runs.
func CasesDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "dockerfiles")
}

// Env is what every golden case builds against.
type Env struct {
	// Base is the busybox base image, pushed to an in-process registry as
	// BaseArgs' BASE (by tag) and BASE_DIGEST (by digest).
	Base     v1.Image
	BaseArgs map[string]string
	// Remote fills ${HTTP_SERVER} and ${GIT_SERVER} in args.txt values.
	Remote *RemoteServers
}

// RequireRootOverlay skips t unless end-to-end builds can run: not
// -short, root, overlayfs and the busybox base image.
func RequireRootOverlay(t *testing.T) {
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

// NewEnv starts an in-process registry and pushes the busybox base.
func NewEnv(t *testing.T) *Env {
	t.Helper()
	host := registrytest.NewInProcess(t)
	base, err := registrytest.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	tagged := host + "/busybox:latest"
	pinned := registrytest.Push(t, base, tagged)
	return &Env{
		Base:     base,
		BaseArgs: map[string]string{"BASE": tagged, "BASE_DIGEST": pinned},
		Remote:   NewRemoteServers(t),
	}
}

// Case is one directory of testdata/dockerfiles.
type Case struct {
	Name   string
	Dir    string
	Args   map[string]string
	Target string
	// Flags are the --secret/--ssh/--build-context/... lines of args.txt.
	Flags []string
}

// LoadCase reads a case's args.txt.
func LoadCase(t *testing.T, dir string) Case {
	t.Helper()
	c := Case{Name: filepath.Base(dir), Dir: dir, Args: map[string]string{}}
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
			c.Target = strings.TrimPrefix(line, "--target=")
		case strings.HasPrefix(line, "--"):
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatal(err)
			}
			c.Flags = append(c.Flags, strings.ReplaceAll(line, "$CASE", abs))
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || k == "" {
				t.Fatalf("%s/args.txt:%d: %q is not K=V", dir, i+1, line)
			}
			c.Args[k] = v
		}
	}
	return c
}

// CopyContext copies src to dst with normalized permissions (0755 for
// directories and executables, 0644 for other files), so that the result
// does not depend on the checkout's umask.
func CopyContext(t *testing.T, src, dst string) {
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

// ReadOCITar extracts an OCI layout tarball and returns its only image.
func ReadOCITar(t *testing.T, path string) (v1.Image, error) {
	t.Helper()
	dir := t.TempDir()
	if _, err := ExtractTar(path, dir); err != nil {
		return nil, err
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

// BaseLayerCount is how many of img's first layers are the base image's.
func BaseLayerCount(base, img v1.Image) (int, error) {
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

// LayersText renders the tar entries of img's layers after the first skip.
func LayersText(img v1.Image, skip int) (string, error) {
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

// ConfigText reduces img's config to what must match BuildKit: no times, no
// rootfs digests, only the history after the base image's.
func ConfigText(base, img v1.Image, newLayers int) (string, error) {
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

// CompareGolden compares got with the file, or rewrites it with -update.
func CompareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *Update {
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
		t.Errorf("%s differs (-want +got):\n%s", path, LineDiff(string(want), got))
	}
}

// LineDiff is a small LCS line diff, enough for golden files.
func LineDiff(a, b string) string {
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

// CaseDirs lists the case directories, sorted.
func CaseDirs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(CasesDir())
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(CasesDir(), e.Name()))
		}
	}
	sort.Strings(dirs)
	if len(dirs) == 0 {
		t.Fatalf("no cases in %s", CasesDir())
	}
	return dirs
}

// LayerDigests lists img's layers as "digest/diffid".
func LayerDigests(t *testing.T, img v1.Image) []string {
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

// RemoteServers are the loopback servers of the golden cases that ADD
// remote sources. args.txt values may use two placeholders:
//
//	${HTTP_SERVER}  an HTTP file server over testdata/dockerfiles (no
//	                ETags; Last-Modified from the files), e.g.
//	                ${HTTP_SERVER}/add-local/context/plain.txt
//	${GIT_SERVER}   the case's repo/ directory as a git repository over
//	                smart HTTP (git http-backend): one commit on main, with
//	                the annotated tag v1; the URL ends in .git
//	${GIT_DUMB_SERVER} the same repository over "dumb" HTTP (a static
//	                file server, as BuildKit's own tests use)
//
// The expected config.json holds the placeholders where the history
// names a server.
type RemoteServers struct {
	t       *testing.T
	httpURL string

	mu      sync.Mutex
	gitRoot string
	gitURL  string
	dumbURL string
	repos   map[string]string // case name -> repository URL
}

const gitHTTPBackend = "/usr/lib/git-core/git-http-backend"

// NewRemoteServers starts the HTTP server over CasesDir; the git server
// starts with the first case that needs it.
func NewRemoteServers(t *testing.T) *RemoteServers {
	srv := httptest.NewServer(http.FileServer(http.Dir(CasesDir())))
	t.Cleanup(srv.Close)
	return &RemoteServers{t: t, httpURL: srv.URL, repos: map[string]string{}}
}

// Expand fills the placeholders of one args.txt value of case c.
func (r *RemoteServers) Expand(t *testing.T, c Case, v string) string {
	t.Helper()
	v = strings.ReplaceAll(v, "${HTTP_SERVER}", r.httpURL)
	if strings.Contains(v, "${GIT_SERVER}") {
		v = strings.ReplaceAll(v, "${GIT_SERVER}", r.repo(t, c))
	}
	if strings.Contains(v, "${GIT_DUMB_SERVER}") {
		r.repo(t, c)
		v = strings.ReplaceAll(v, "${GIT_DUMB_SERVER}", r.dumbURL+"/"+c.Name+"/.git")
	}
	return v
}

// Unexpand puts the placeholders back into s.
func (r *RemoteServers) Unexpand(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, u := range r.repos {
		s = strings.ReplaceAll(s, u, "${GIT_SERVER}")
		s = strings.ReplaceAll(s, r.dumbURL+"/"+name+"/.git", "${GIT_DUMB_SERVER}")
	}
	return strings.ReplaceAll(s, r.httpURL, "${HTTP_SERVER}")
}

// repo returns the URL of c's repository, creating it on first use.
func (r *RemoteServers) repo(t *testing.T, c Case) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if u, ok := r.repos[c.Name]; ok {
		return u
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	if _, err := os.Stat(gitHTTPBackend); err != nil {
		t.Skipf("git http-backend: %v", err)
	}
	if r.gitRoot == "" {
		r.gitRoot = r.t.TempDir()
		srv := httptest.NewServer(&cgi.Handler{
			Path: gitHTTPBackend,
			Env:  []string{"GIT_PROJECT_ROOT=" + r.gitRoot, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + r.gitRoot},
		})
		r.t.Cleanup(srv.Close)
		r.gitURL = srv.URL
		dumb := httptest.NewServer(http.FileServer(http.Dir(r.gitRoot)))
		r.t.Cleanup(dumb.Close)
		r.dumbURL = dumb.URL
	}
	dir := filepath.Join(r.gitRoot, c.Name)
	CopyContext(t, filepath.Join(c.Dir, "repo"), dir)
	runGit(t, dir, "init", "-q", "-b", "main")
	runGit(t, dir, "add", "-A")
	runGit(t, dir, "commit", "-q", "-m", "first")
	runGit(t, dir, "tag", "-a", "v1", "-m", "v1")
	runGit(t, dir, "update-server-info")
	u := r.gitURL + "/" + c.Name + "/.git"
	r.repos[c.Name] = u
	return u
}

// Commit adds a commit that writes data to file in c's repository.
func (r *RemoteServers) Commit(t *testing.T, c Case, file, data string) {
	t.Helper()
	dir := filepath.Join(r.gitRoot, c.Name)
	if err := os.WriteFile(filepath.Join(dir, file), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	runGit(t, dir, "add", "-A")
	runGit(t, dir, "commit", "-q", "-m", "change "+file)
	runGit(t, dir, "update-server-info")
}

func runGit(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir,
		"GIT_AUTHOR_NAME=golden", "GIT_AUTHOR_EMAIL=golden@example.com", "GIT_AUTHOR_DATE=2020-01-01T00:00:00Z",
		"GIT_COMMITTER_NAME=golden", "GIT_COMMITTER_EMAIL=golden@example.com", "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
}

// ImageDigest is the manifest digest of img.
func ImageDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
