package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BuildKit's ADD <git URL> tests (frontend/dockerfile/dockerfile_addgit_test.go)
// as focused tests: each needs a repository with several tags, branches or
// a submodule, served over "dumb" HTTP as BuildKit's tests serve it, and
// several builds.

// dumbGitRepo creates a repository in a new directory with the given
// object format ("sha1" or "sha256"), runs steps in it, and serves it
// over dumb HTTP. It returns the directory and the repository URL.
func dumbGitRepo(t *testing.T, format string, steps func(git func(args ...string), write func(name, data string))) (string, string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	git := func(args ...string) { t.Helper(); runGitAt(t, dir, args...) }
	write := func(name, data string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q", "-b", "master", "--object-format="+format)
	steps(git, write)
	git("update-server-info")
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return dir, srv.URL + "/.git"
}

// runGitAt runs git in dir with a fixed identity and date (as the golden
// suite's repositories), so commits are reproducible.
func runGitAt(t *testing.T, dir string, args ...string) {
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

func revParse(t *testing.T, dir, rev string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", dir, "rev-parse", rev).Output()
	if err != nil {
		t.Fatalf("git rev-parse %s: %v", rev, err)
	}
	return strings.TrimSpace(string(out))
}

// taggedRepo is BuildKit's repository of testAddGit: one commit per tag,
// each writing "foo of <tag>" to foo.
func taggedRepo(t *testing.T, format string, tags ...string) (string, string) {
	return dumbGitRepo(t, format, func(git func(...string), write func(string, string)) {
		for _, tag := range tags {
			write("foo", "foo of "+tag+"\n")
			git("add", "foo")
			git("commit", "-q", "-m", tag)
			git("tag", tag)
		}
	})
}

// TestAddGitBuildKit is BuildKit's testAddGitSHA1 and testAddGitSHA256
// (testAddGit): ADD of a tag, with --keep-git-dir, --chown and a matching
// --checksum, without .git, by commit, and the two checksum errors. The
// apk add git / git status step is left out (the test busybox has no git).
func TestAddGitBuildKit(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format, func(t *testing.T) {
			dir, repo := taggedRepo(t, format, "v0.0.1", "v0.0.2", "v0.0.3")
			v2, v3 := revParse(t, dir, "v0.0.2"), revParse(t, dir, "v0.0.3")
			root := t.TempDir()
			steps := []struct {
				name, df, wantErr string
			}{
				{"tag and keep-git-dir", `
ADD ` + repo + `#v0.0.1 /x
RUN cd /x && \
  [ "$(cat foo)" = "foo of v0.0.1" ]
ARG REPO="` + repo + `"
ARG TAG="v0.0.2"
ADD --keep-git-dir=true --chown=4242:8484 --checksum=` + v2 + ` ${REPO}#${TAG} /buildkit-chowned
USER 4242
RUN cd /buildkit-chowned && \
  [ "$(cat foo)" = "foo of v0.0.2" ] && \
  [ "$(stat -c %u foo)" = "4242" ] && \
  [ "$(stat -c %g foo)" = "8484" ] && \
  [ -d .git ]
`, ""},
				{"checksum without .git", `
ARG REPO="` + repo + `"
ARG TAG="v0.0.3"
ADD --checksum=` + v3 + ` ${REPO}#${TAG} /nogitdir
RUN [ -f /nogitdir/foo ]
RUN [ "$(cat /nogitdir/foo)" = "foo of v0.0.3" ]
RUN [ ! -d /nogitdir/.git ]
`, ""},
				{"pulled ref again", `
ARG REPO="` + repo + `"
ARG TAG="v0.0.2"
ADD --keep-git-dir --checksum=` + v2 + ` ${REPO}#${TAG} /nogitdir
RUN [ -f /nogitdir/foo ]
RUN [ "$(cat /nogitdir/foo)" = "foo of v0.0.2" ]
RUN [ -d /nogitdir/.git ]
`, ""},
				{"commit as ref", `
ARG REPO="` + repo + `"
ARG COMMIT="` + v3 + `"
ADD --keep-git-dir=true --checksum=` + v3 + ` ${REPO}#${COMMIT} /commitdir
RUN [ -f /commitdir/foo ]
RUN [ "$(cat /commitdir/foo)" = "foo of v0.0.3" ]
RUN [ -d /commitdir/.git ]
`, ""},
				{"checksum mismatch", `
ARG REPO="` + repo + `"
ARG TAG="v0.0.3"
ADD --checksum=` + v2 + ` ${REPO}#${TAG} /faildir
`, "expected checksum to match"},
				{"garbage checksum", `
ARG REPO="` + repo + `"
ARG TAG="v0.0.3"
ADD --checksum=foobar ${REPO}#${TAG} /faildir
`, "invalid checksum|expected hex commit hash"},
			}
			for _, s := range steps {
				ctxDir := t.TempDir()
				writeFiles(t, ctxDir, map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\n" + s.df})
				_, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs})
				checkBuildErr(t, s.name, err, progress, s.wantErr)
			}
		})
	}
}

// checkBuildErr checks a build's outcome: success when wantErr is empty,
// else an error whose text or progress contains every "|"-separated part.
func checkBuildErr(t *testing.T, name string, err error, progress, wantErr string) {
	t.Helper()
	if wantErr == "" {
		if err != nil {
			t.Errorf("%s: %v\nprogress:\n%s", name, err, progress)
		}
		return
	}
	if err == nil {
		t.Errorf("%s: build succeeded, want an error containing %q", name, wantErr)
		return
	}
	for _, want := range strings.Split(wantErr, "|") {
		if !strings.Contains(err.Error(), want) && !strings.Contains(progress, want) {
			t.Errorf("%s: error %v: want it to contain %q\nprogress:\n%s", name, err, want, progress)
		}
	}
}

// TestAddGitChecksumCache is BuildKit's testAddGitChecksumCache: ADD of a
// tag, then the same ADD with --checksum of the tag's commit, hits the
// cache (the RUN after it is not re-run).
func TestAddGitChecksumCache(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	dir, repo := taggedRepo(t, "sha1", "v0.0.1", "v0.0.2")
	commit := revParse(t, dir, "v0.0.2")
	root := t.TempDir()
	var unique []string
	for _, checksum := range []string{"", "--checksum=" + commit + " "} {
		ctxDir := t.TempDir()
		writeFiles(t, ctxDir, map[string]string{"Dockerfile": `ARG BASE
FROM $BASE AS src
ADD --keep-git-dir ` + checksum + repo + `#v0.0.2 /repo
RUN head -c 16 /dev/urandom | base64 > /repo/unique.txt
FROM scratch
COPY --from=src /repo/unique.txt /
`})
		img, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs})
		if err != nil {
			t.Fatalf("build %q: %v\nprogress:\n%s", checksum, err, progress)
		}
		unique = append(unique, imageFiles(t, img)["unique.txt"])
	}
	if unique[0] == "" || unique[0] != unique[1] {
		t.Errorf("unique.txt = %q then %q: the --checksum build missed the cache", unique[0], unique[1])
	}
}

// TestGitQueryString is the ADD half of BuildKit's testGitQueryString:
// git URL query strings (ref, branch, tag, commit, subdir, keep-git-dir,
// submodules) and their errors. The context half builds from a git
// context URL, which builder does not support.
func TestGitQueryString(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	_, subURL := dumbGitRepo(t, "sha1", func(git func(...string), write func(string, string)) {
		write("file", "123\n")
		git("add", "file")
		git("commit", "-q", "-m", "initial")
	})
	dir, repo := dumbGitRepo(t, "sha1", func(git func(...string), write func(string, string)) {
		write("foo", "base\n")
		git("-c", "protocol.file.allow=always", "submodule", "add", "-q", subURL, "submod")
		git("add", "foo", "submod")
		git("commit", "-q", "-m", "initial")
		git("tag", "v0.0.1")
		git("branch", "base")
		write("foo", "feature\n")
		write("sub/foo", "subfeature\n")
		git("add", "foo", "sub")
		git("commit", "-q", "-m", "feature")
		git("branch", "feature")
		git("checkout", "-q", "-B", "master", "base")
		write("foo", "v0.0.2\n")
		git("add", "foo")
		git("commit", "-q", "-m", "v0.0.2")
		git("tag", "v0.0.2")
		write("foo", "latest\n")
		git("add", "foo")
		git("commit", "-q", "-m", "latest")
		git("tag", "latest")
	})
	v2, latest := revParse(t, dir, "v0.0.2"), revParse(t, dir, "latest")
	cases := []struct {
		name, url, target, out, err string
	}{
		{"tag with invalid commit", repo + "?tag=v0.0.2&commit=" + latest, "", "", "expected checksum to match"},
		{"old style ref", repo + "#v0.0.2", "", "v0.0.2\n", ""},
		{"querystring ref", repo + "?ref=base", "", "base\n", ""},
		{"querystring branch", repo + "?branch=base", "", "base\n", ""},
		{"querystring invalid branch", repo + "?branch=invalid", "", "", "repository does not contain ref"},
		{"tag as branch", repo + "?branch=v0.0.2", "", "", "repository does not contain ref"},
		{"allowed mixed refs", repo + "?tag=v0.0.2#refs/tags/v0.0.2", "", "v0.0.2\n", ""},
		{"v2 by commit", repo + "?commit=" + latest, "", "latest\n", ""},
		{"v2 by commit (wrong short)", repo + "?commit=" + v2[:8], "", "", "expected checksum to match"},
		{"v2 by commit (short)", repo + "?commit=" + latest[:8], "", "latest\n", ""},
		{"v2 ref by commit", repo + "?ref=" + v2, "", "v0.0.2\n", ""},
		{"v2 ref by commit (short)", repo + "?ref=" + v2[:8], "", "", "repository does not contain ref"},
		{"tag with commit", repo + "?tag=v0.0.2&commit=" + v2, "", "v0.0.2\n", ""},
		{"commit with commit", repo + "?ref=" + v2 + "&commit=" + v2, "", "v0.0.2\n", ""},
		{"latest with commit", repo + "?commit=" + latest, "", "latest\n", ""},
		{"mismatch refs", repo + "?tag=v0.0.2#refs/heads/master", "", "", "ref conflicts"},
		{"sub old-style", repo + "#feature:sub", "", "subfeature\n", ""},
		{"sub query", repo + "?subdir=sub&ref=feature", "", "subfeature\n", ""},
		{"withgit", repo + "?keep-git-dir=true", "withgit", latest + "\n", ""},
		{"withgitandtag", repo + "?tag=v0.0.2&keep-git-dir=true", "withgit", v2 + "\n", ""},
		{"withgit-default", repo, "withgit", "", `.git/HEAD": not found`},
		{"withgit-valueless", repo + "?keep-git-dir&submodules", "withgit", latest + "\n", ""},
		{"withgit-forbidden", repo + "?keep-git-dir=false", "withgit", "", `.git/HEAD": not found`},
		{"withsubmod", repo, "withsubmod", "123\n", ""},
		{"withsubmodset", repo + "?submodules=true", "withsubmod", "123\n", ""},
		{"withsubmodempty", repo + "?submodules", "withsubmod", "123\n", ""},
		{"withoutsubmod", repo + "?submodules=false", "withsubmod", "", `submod/file": not found`},
	}
	root := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctxDir := t.TempDir()
			writeFiles(t, ctxDir, map[string]string{"Dockerfile": fmt.Sprintf(`
FROM scratch AS main
ADD %s /repo/
FROM scratch as withsubmod
COPY --from=main /repo/submod/file /repo/foo
FROM scratch AS withgit
COPY --from=main /repo/.git/HEAD /repo/foo
FROM main
`, c.url)})
			img, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs, Target: c.target})
			checkBuildErr(t, c.name, err, progress, c.err)
			if err != nil || c.err != "" {
				return
			}
			if got := imageFiles(t, img)["repo/foo"]; got != c.out {
				t.Errorf("/repo/foo = %q, want %q", got, c.out)
			}
		})
	}
}
