package main

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// remoteServers are the loopback servers of the golden cases that ADD
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
type remoteServers struct {
	t       *testing.T
	httpURL string

	mu      sync.Mutex
	gitRoot string
	gitURL  string
	dumbURL string
	repos   map[string]string // case name -> repository URL
}

const gitHTTPBackend = "/usr/lib/git-core/git-http-backend"

func newRemoteServers(t *testing.T) *remoteServers {
	srv := httptest.NewServer(http.FileServer(http.Dir(casesDir)))
	t.Cleanup(srv.Close)
	return &remoteServers{t: t, httpURL: srv.URL, repos: map[string]string{}}
}

// expand fills the placeholders of one args.txt value of case c.
func (r *remoteServers) expand(t *testing.T, c goldenCase, v string) string {
	t.Helper()
	v = strings.ReplaceAll(v, "${HTTP_SERVER}", r.httpURL)
	if strings.Contains(v, "${GIT_SERVER}") {
		v = strings.ReplaceAll(v, "${GIT_SERVER}", r.repo(t, c))
	}
	if strings.Contains(v, "${GIT_DUMB_SERVER}") {
		r.repo(t, c)
		v = strings.ReplaceAll(v, "${GIT_DUMB_SERVER}", r.dumbURL+"/"+c.name+"/.git")
	}
	return v
}

// unexpand puts the placeholders back into s.
func (r *remoteServers) unexpand(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, u := range r.repos {
		s = strings.ReplaceAll(s, u, "${GIT_SERVER}")
		s = strings.ReplaceAll(s, r.dumbURL+"/"+name+"/.git", "${GIT_DUMB_SERVER}")
	}
	return strings.ReplaceAll(s, r.httpURL, "${HTTP_SERVER}")
}

// repo returns the URL of c's repository, creating it on first use.
func (r *remoteServers) repo(t *testing.T, c goldenCase) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if u, ok := r.repos[c.name]; ok {
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
	dir := filepath.Join(r.gitRoot, c.name)
	copyContext(t, filepath.Join(c.dir, "repo"), dir)
	runGit(t, dir, "init", "-q", "-b", "main")
	runGit(t, dir, "add", "-A")
	runGit(t, dir, "commit", "-q", "-m", "first")
	runGit(t, dir, "tag", "-a", "v1", "-m", "v1")
	runGit(t, dir, "update-server-info")
	u := r.gitURL + "/" + c.name + "/.git"
	r.repos[c.name] = u
	return u
}

// commit adds a commit that writes data to file in c's repository.
func (r *remoteServers) commit(t *testing.T, c goldenCase, file, data string) {
	t.Helper()
	dir := filepath.Join(r.gitRoot, c.name)
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

// TestGoldenRemoteCache rebuilds the add-http and add-git cases with the
// same --root: an unchanged server answer is CACHED; a new commit on main
// re-runs the steps that read main and nothing else.
func TestGoldenRemoteCache(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	for _, name := range []string{"add-http", "add-git"} {
		t.Run(name, func(t *testing.T) {
			c := loadCase(t, filepath.Join(casesDir, name))
			ctxDir := t.TempDir()
			root := t.TempDir()
			build := func(what string) map[string]string {
				t.Helper()
				r := env.build(t, c, ctxDir, root)
				if r.err != nil {
					t.Fatalf("%s: %v\nprogress:\n%s", what, r.err, r.progress)
				}
				return stepStates(r.progress)
			}
			first := build("first build")
			if len(first) == 0 {
				t.Fatal("first build: no ADD steps in the progress")
			}
			for step, st := range build("second build") {
				if st != "CACHED" {
					t.Errorf("second build: %q is %s, want CACHED", step, st)
				}
			}
			if name != "add-git" {
				return
			}
			env.remote.commit(t, c, "docs/readme.md", "changed\n")
			for step, st := range build("build after a commit on main") {
				want := "CACHED"
				if strings.Contains(step, "main") {
					want = "DONE"
				}
				if st != want {
					t.Errorf("after a commit on main: %q is %s, want %s", step, st, want)
				}
			}
		})
	}
}
