package ops

import (
	"context"
	"io/fs"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/solver"
	digest "github.com/opencontainers/go-digest"
)

// newRemoteWorker is a worker on the native snapshotter (no mounts needed
// for a single writable snapshot) with a blob store, records and state.
func newRemoteWorker(t *testing.T) *Worker {
	t.Helper()
	dir := t.TempDir()
	sn, err := snapshot.NewNamed(filepath.Join(dir, "snapshots"), "native")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	blobs, err := cache.OpenBlobStore(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := cache.OpenMetaStore(filepath.Join(dir, "meta"))
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Snapshotter: sn, Blobs: blobs, Meta: meta, StateDir: filepath.Join(dir, "state")})
}

// fileInfo is one entry of a result tree.
type fileInfo struct {
	mode  fs.FileMode
	data  string
	mtime time.Time
}

// readTree returns the tree of result r by path.
func readTree(t *testing.T, w *Worker, r solver.Result) map[string]fileInfo {
	t.Helper()
	ctx := context.Background()
	name, err := snapshotName(r)
	if err != nil {
		t.Fatal(err)
	}
	key := newID("read-")
	m, err := w.opt.Snapshotter.Prepare(ctx, key, name)
	if err != nil {
		t.Fatal(err)
	}
	defer w.opt.Snapshotter.Remove(ctx, key)
	out := map[string]fileInfo{}
	err = snapshot.WithMounts(ctx, [][]snapshot.Mount{m}, func(roots []string) error {
		return filepath.WalkDir(roots[0], func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == roots[0] {
				return err
			}
			rel, _ := filepath.Rel(roots[0], p)
			fi, err := d.Info()
			if err != nil {
				return err
			}
			e := fileInfo{mode: fi.Mode(), mtime: fi.ModTime()}
			if fi.Mode().IsRegular() {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				e.data = string(b)
			}
			out[filepath.ToSlash(rel)] = e
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m map[string]fileInfo) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fileServer serves mutable bodies and counts requests by method.
type fileServer struct {
	mu       sync.Mutex
	body     map[string]string
	etag     map[string]string
	modified map[string]string
	requests map[string]int
}

func newFileServer(t *testing.T) (*fileServer, *httptest.Server) {
	fsrv := &fileServer{body: map[string]string{}, etag: map[string]string{}, modified: map[string]string{}, requests: map[string]int{}}
	srv := httptest.NewServer(fsrv)
	t.Cleanup(srv.Close)
	return fsrv, srv
}

func (f *fileServer) set(p, body, etag, modified string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.body[p], f.etag[p], f.modified[p] = body, etag, modified
}

func (f *fileServer) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[method]
}

func (f *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests[r.Method]++
	body, ok := f.body[r.URL.Path]
	etag, modified := f.etag[r.URL.Path], f.modified[r.URL.Path]
	f.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if modified != "" {
		w.Header().Set("Last-Modified", modified)
	}
	if etag != "" {
		w.Header().Set("ETag", `"`+etag+`"`)
		if strings.Contains(r.Header.Get("If-None-Match"), `"`+etag+`"`) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	if r.Method == http.MethodHead {
		return
	}
	w.Write([]byte(body))
}

func httpVertex(op llb.HTTPOp) *llb.Vertex {
	return llb.NewVertex(op, nil, llb.Meta{Name: "ADD " + op.URL})
}

func cacheKey(t *testing.T, w *Worker, v *llb.Vertex) (solver.Op, digest.Digest) {
	t.Helper()
	op, err := w.ResolveOp(v)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := op.CacheMap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cm.Volatile {
		t.Fatal("remote sources must not be volatile")
	}
	return op, cm.Digest
}

func TestHTTPSourceETagRevalidation(t *testing.T) {
	w := newRemoteWorker(t)
	fsrv, srv := newFileServer(t)
	lm := "Wed, 21 Oct 2015 07:28:00 GMT"
	fsrv.set("/dl/f.txt", "hello\n", "v1", lm)
	v := httpVertex(llb.HTTPOp{URL: srv.URL + "/dl/f.txt", Filename: "f.txt"})

	op, key1 := cacheKey(t, w, v)
	if fsrv.count("GET") != 1 {
		t.Fatalf("first CacheMap made %d GETs, want 1", fsrv.count("GET"))
	}
	res, err := op.Exec(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if fsrv.count("GET") != 1 {
		t.Errorf("Exec downloaded again (%d GETs): the CacheMap download must be reused", fsrv.count("GET"))
	}
	tree := readTree(t, w, res)
	f, ok := tree["f.txt"]
	if !ok || len(tree) != 1 {
		t.Fatalf("tree %v, want only f.txt", keys(tree))
	}
	want, _ := http.ParseTime(lm)
	if f.data != "hello\n" || f.mode != 0o600 || !f.mtime.Equal(want) {
		t.Errorf("f.txt: %q mode %v mtime %v, want hello, 0600, %v", f.data, f.mode, f.mtime, want)
	}

	// Unchanged: a HEAD with the stored ETag, no download, same key.
	_, key2 := cacheKey(t, w, v)
	if key2 != key1 {
		t.Errorf("unchanged response: key %s, want %s", key2, key1)
	}
	if fsrv.count("GET") != 1 || fsrv.count("HEAD") != 1 {
		t.Errorf("revalidation made %d GETs and %d HEADs, want 1 and 1", fsrv.count("GET"), fsrv.count("HEAD"))
	}

	// Changed: a new ETag and body, a new key.
	fsrv.set("/dl/f.txt", "hello again\n", "v2", lm)
	op3, key3 := cacheKey(t, w, v)
	if key3 == key1 {
		t.Error("changed response: same key")
	}
	res3, err := op3.Exec(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, w, res3)["f.txt"].data; got != "hello again\n" {
		t.Errorf("after change: %q", got)
	}

	// Back to v1: its ETag is still remembered.
	fsrv.set("/dl/f.txt", "hello\n", "v1", lm)
	gets := fsrv.count("GET")
	if _, key4 := cacheKey(t, w, v); key4 != key1 {
		t.Errorf("old response again: key %s, want %s", key4, key1)
	}
	if fsrv.count("GET") != gets {
		t.Error("a remembered ETag was downloaded again")
	}
}

func TestHTTPSourceWithoutETag(t *testing.T) {
	w := newRemoteWorker(t)
	fsrv, srv := newFileServer(t)
	fsrv.set("/a", "data", "", "")
	v := httpVertex(llb.HTTPOp{URL: srv.URL + "/a", Filename: "a", Perm: 0o644, UID: 7, GID: 8})
	op, key1 := cacheKey(t, w, v)
	_, key2 := cacheKey(t, w, v)
	if key1 != key2 {
		t.Errorf("same body: keys %s and %s", key1, key2)
	}
	if fsrv.count("GET") != 2 {
		t.Errorf("%d GETs, want a download per CacheMap", fsrv.count("GET"))
	}
	fsrv.set("/a", "other", "", "")
	if _, key3 := cacheKey(t, w, v); key3 == key1 {
		t.Error("changed body: same key")
	}
	// op still carries the first body's digest: the changed server
	// content must be refused rather than stored under the old key.
	if err := w.opt.Blobs.Delete(digest.FromString("data")); err != nil {
		t.Fatal(err)
	}
	if _, err := op.Exec(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "changed during the build") {
		t.Errorf("Exec after a change: %v", err)
	}
	fsrv.set("/a", "data", "", "")
	res, err := op.Exec(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := readTree(t, w, res)["a"]
	if f.data != "data" || f.mode != 0o644 || !f.mtime.Equal(time.Unix(0, 0)) {
		t.Errorf("a: %q mode %v mtime %v, want data, 0644, the epoch", f.data, f.mode, f.mtime)
	}
	if os.Geteuid() == 0 {
		var uid, gid int
		name, _ := snapshotName(res)
		key := newID("read-")
		m, err := w.opt.Snapshotter.Prepare(context.Background(), key, name)
		if err != nil {
			t.Fatal(err)
		}
		defer w.opt.Snapshotter.Remove(context.Background(), key)
		snapshot.WithMounts(context.Background(), [][]snapshot.Mount{m}, func(roots []string) error {
			uid, gid = remoteOwnerOf(t, filepath.Join(roots[0], "a"))
			return nil
		})
		if uid != 7 || gid != 8 {
			t.Errorf("owner %d:%d, want 7:8", uid, gid)
		}
	}
}

func TestHTTPSourceChecksum(t *testing.T) {
	w := newRemoteWorker(t)
	fsrv, srv := newFileServer(t)
	fsrv.set("/f", "pinned", "e", "")
	good := digest.FromString("pinned")
	bad := digest.FromString("something else")
	tests := []struct {
		name     string
		checksum digest.Digest
		wantErr  []string
	}{
		{"sha256 ok", good, nil},
		{"sha512 ok", digest.SHA512.FromString("pinned"), nil},
		{"mismatch", bad, []string{"digest mismatch", srv.URL + "/f", good.String(), bad.String()}},
		{"sha512 mismatch", digest.SHA512.FromString("x"), []string{"digest mismatch", digest.SHA512.FromString("pinned").String()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fsrv.count("GET") + fsrv.count("HEAD")
			op, key := cacheKey(t, w, httpVertex(llb.HTTPOp{URL: srv.URL + "/f", Filename: "f", Checksum: tt.checksum.String()}))
			if n := fsrv.count("GET") + fsrv.count("HEAD"); n != before {
				t.Errorf("a pinned checksum made %d requests in CacheMap", n-before)
			}
			if key == "" {
				t.Error("empty key")
			}
			res, err := op.Exec(context.Background(), nil)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got := readTree(t, w, res)["f"].data; got != "pinned" {
					t.Errorf("content %q", got)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
		})
	}
}

func TestHTTPSourceErrors(t *testing.T) {
	w := newRemoteWorker(t)
	_, srv := newFileServer(t)
	tests := []struct {
		name string
		url  string
		want string
	}{
		{"not found", srv.URL + "/missing", "404"},
		{"refused", "http://127.0.0.1:1/x", "127.0.0.1:1"},
		{"bad url", "http://[::1", "http source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op, err := w.ResolveOp(httpVertex(llb.HTTPOp{URL: tt.url, Filename: "x"}))
			if err != nil {
				t.Fatal(err)
			}
			_, err = op.CacheMap(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSafeFileNameAndETag(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"a.txt": "a.txt", "": "download", "..": "download", "x/../y": "y", "a\x01b": "download", " sp ": "sp"} {
		if got := safeFileName(in); got != want {
			t.Errorf("safeFileName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{`"abc"`: "abc", `W/"abc"`: "abc", "abc": "abc", `""`: ""} {
		if got := etagValue(in); got != want {
			t.Errorf("etagValue(%q) = %q, want %q", in, got, want)
		}
	}
	if got := redactURL("https://u:secret@h/x"); strings.Contains(got, "secret") {
		t.Errorf("redactURL kept the password: %s", got)
	}
}

// gitRepo is a repository served by git http-backend on loopback.
type gitRepo struct {
	dir string // the work tree
	url string
}

func (g *gitRepo) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = g.dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+g.dir, "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_AUTHOR_DATE=2020-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (g *gitRepo) write(t *testing.T, rel, data string, mode fs.FileMode) {
	t.Helper()
	p := filepath.Join(g.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

const gitHTTPBackend = "/usr/lib/git-core/git-http-backend"

// newGitRepo makes a repo with main (a.txt, run.sh 0755, sub/b.txt), an
// annotated tag v1 on it, and a branch dev with one more commit, served
// over smart HTTP at <url>.
func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	if _, err := os.Stat(gitHTTPBackend); err != nil {
		t.Skipf("%s: %v", gitHTTPBackend, err)
	}
	root := t.TempDir()
	g := &gitRepo{dir: filepath.Join(root, "repo")}
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	g.run(t, "init", "-q", "-b", "main")
	g.run(t, "config", "uploadpack.allowReachableSHA1InWant", "true")
	g.write(t, "a.txt", "a\n", 0o644)
	g.write(t, "run.sh", "#!/bin/sh\n", 0o755)
	g.write(t, "sub/b.txt", "b\n", 0o644)
	g.run(t, "add", "-A")
	g.run(t, "commit", "-q", "-m", "one")
	g.run(t, "tag", "-a", "v1", "-m", "v1")
	g.run(t, "checkout", "-q", "-b", "dev")
	g.write(t, "dev.txt", "dev\n", 0o644)
	g.run(t, "add", "-A")
	g.run(t, "commit", "-q", "-m", "dev")
	g.run(t, "checkout", "-q", "main")
	h := &cgi.Handler{
		Path: gitHTTPBackend,
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + root},
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	g.url = srv.URL + "/repo/.git"
	return g
}

func gitVertex(op llb.GitOp) *llb.Vertex {
	return llb.NewVertex(op, nil, llb.Meta{Name: "ADD " + op.Remote})
}

func TestGitSource(t *testing.T) {
	g := newGitRepo(t)
	mainSHA := g.run(t, "rev-parse", "main")
	devSHA := g.run(t, "rev-parse", "dev")
	tests := []struct {
		name    string
		op      llb.GitOp
		files   []string
		wantErr string
	}{
		{name: "default branch", op: llb.GitOp{}, files: []string{"a.txt", "run.sh", "sub", "sub/b.txt"}},
		{name: "branch", op: llb.GitOp{Ref: "dev"}, files: []string{"a.txt", "dev.txt", "run.sh", "sub", "sub/b.txt"}},
		{name: "full branch ref", op: llb.GitOp{Ref: "refs/heads/dev"}, files: []string{"a.txt", "dev.txt", "run.sh", "sub", "sub/b.txt"}},
		{name: "annotated tag", op: llb.GitOp{Ref: "v1"}, files: []string{"a.txt", "run.sh", "sub", "sub/b.txt"}},
		{name: "commit", op: llb.GitOp{Ref: devSHA}, files: []string{"a.txt", "dev.txt", "run.sh", "sub", "sub/b.txt"}},
		{name: "subdir", op: llb.GitOp{Ref: "main", Subdir: "sub"}, files: []string{"b.txt"}},
		{name: "checksum ok", op: llb.GitOp{Ref: "dev", Checksum: devSHA[:10]}, files: []string{"a.txt", "dev.txt", "run.sh", "sub", "sub/b.txt"}},
		{name: "checksum mismatch", op: llb.GitOp{Ref: "dev", Checksum: mainSHA}, wantErr: "expected checksum to match"},
		{name: "missing ref", op: llb.GitOp{Ref: "nope"}, wantErr: "does not contain ref nope"},
		{name: "missing subdir", op: llb.GitOp{Ref: "main", Subdir: "nope"}, wantErr: "subdir nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newRemoteWorker(t)
			tt.op.Remote = g.url
			op, err := w.ResolveOp(gitVertex(tt.op))
			if err != nil {
				t.Fatal(err)
			}
			var res solver.Result
			_, err = op.CacheMap(context.Background())
			if err == nil {
				res, err = op.Exec(context.Background(), nil)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tree := readTree(t, w, res)
			if got := strings.Join(keys(tree), " "); got != strings.Join(tt.files, " ") {
				t.Errorf("files %q, want %q", got, strings.Join(tt.files, " "))
			}
			if f, ok := tree["run.sh"]; ok && f.mode != 0o755 {
				t.Errorf("run.sh mode %v, want 0755", f.mode)
			}
			if f, ok := tree["a.txt"]; ok && (f.mode != 0o644 || f.data != "a\n") {
				t.Errorf("a.txt %q mode %v", f.data, f.mode)
			}
		})
	}
}

func TestGitSourceKeepGitDir(t *testing.T) {
	g := newGitRepo(t)
	w := newRemoteWorker(t)
	op, _ := cacheKey(t, w, gitVertex(llb.GitOp{Remote: g.url, Ref: "dev", KeepGitDir: true}))
	res, err := op.Exec(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tree := readTree(t, w, res)
	if _, ok := tree[".git/HEAD"]; !ok {
		t.Fatalf("no .git/HEAD in %v", keys(tree))
	}
	if _, ok := tree[".git/FETCH_HEAD"]; ok {
		t.Error(".git/FETCH_HEAD was kept")
	}
	if _, ok := tree["dev.txt"]; !ok {
		t.Error("no dev.txt")
	}
	// No leftovers of the checkout under the state dir.
	ents, _ := os.ReadDir(filepath.Join(w.stateDir(), "tmp"))
	if len(ents) != 0 {
		t.Errorf("temp checkouts left behind: %v", ents)
	}
}

func TestGitSourceCacheKey(t *testing.T) {
	t.Parallel()
	g := newGitRepo(t)
	w := newRemoteWorker(t)
	mainV := gitVertex(llb.GitOp{Remote: g.url, Ref: "main"})
	devV := gitVertex(llb.GitOp{Remote: g.url, Ref: "dev"})
	tagV := gitVertex(llb.GitOp{Remote: g.url, Ref: "v1"})
	keepTagV := gitVertex(llb.GitOp{Remote: g.url, Ref: "v1", KeepGitDir: true})
	_, main1 := cacheKey(t, w, mainV)
	_, dev1 := cacheKey(t, w, devV)
	_, tag1 := cacheKey(t, w, tagV)
	_, keepTag := cacheKey(t, w, keepTagV)
	if _, main2 := cacheKey(t, w, mainV); main2 != main1 {
		t.Error("unchanged branch: a new key")
	}
	if main1 == dev1 || tag1 == keepTag {
		t.Error("different refs or options share a key")
	}
	// The annotated tag counts by its commit unless .git is kept.
	mainSHA := g.run(t, "rev-parse", "main")
	if want := digest.FromString(string(tagV.Digest()) + "\n" + mainSHA); tag1 != want {
		t.Errorf("tag key %s, want the key of commit %s", tag1, mainSHA)
	}
	g.write(t, "a.txt", "changed\n", 0o644)
	g.run(t, "commit", "-q", "-am", "two")
	_, main3 := cacheKey(t, w, mainV)
	if main3 == main1 {
		t.Error("new commit on main: same key")
	}
	if _, dev2 := cacheKey(t, w, devV); dev2 != dev1 {
		t.Error("unchanged dev after a commit on main: a new key")
	}
	if _, tag2 := cacheKey(t, w, tagV); tag2 != tag1 {
		t.Error("unchanged tag: a new key")
	}
}

func TestParseLsRemote(t *testing.T) {
	const a, b, c = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222", "3333333333333333333333333333333333333333"
	tests := []struct {
		name, out, ref string
		want           *gitResolved
	}{
		{"branch", a + "\trefs/heads/x\n", "x", &gitResolved{Ref: "refs/heads/x", Commit: a}},
		{"branch wins over tag", b + "\trefs/tags/x\n" + a + "\trefs/heads/x\n", "x", &gitResolved{Ref: "refs/heads/x", Commit: a}},
		{"annotated tag", b + "\trefs/tags/x\n" + c + "\trefs/tags/x^{}\n", "x", &gitResolved{Ref: "refs/tags/x", Commit: b, Peeled: c}},
		{"full ref", a + "\trefs/pull/1/head\n", "refs/pull/1/head", &gitResolved{Ref: "refs/pull/1/head", Commit: a}},
		{"missing", a + "\trefs/heads/y\n", "x", nil},
		{"bad sha", "zz\trefs/heads/x\n", "x", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLsRemote(tt.out, tt.ref)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("got %+v, want an error", got)
				}
				return
			}
			if err != nil || *got != *tt.want {
				t.Errorf("got %+v, %v, want %+v", got, err, tt.want)
			}
		})
	}
}

func remoteOwnerOf(t *testing.T, p string) (uid, gid int) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}
