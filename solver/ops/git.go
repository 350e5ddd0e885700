package ops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops/internal/fileop"
	digest "github.com/opencontainers/go-digest"
)

// gitOp checks out a git repository with the git CLI (ADD <git url>).
//
// Cache key, as BuildKit's git source: the commit the ref resolves to on
// the remote (git ls-remote; a ref that is itself a commit SHA needs no
// request), so a new commit on a branch is a miss and an unchanged ref a
// hit. The checkout is a shallow fetch into a temp dir under --root, then
// a copy of the work tree (or Subdir) into a new snapshot.
type gitOp struct {
	w  *Worker
	v  *llb.Vertex
	op llb.GitOp

	mu       sync.Mutex
	resolved *gitResolved
}

// gitResolved is a ref resolved on the remote.
type gitResolved struct {
	// Ref is the full ref name that matched ("" when the ref is a SHA).
	Ref string
	// Commit is the object the ref points to (a tag object for an
	// annotated tag) and Peeled the commit it names.
	Commit string
	Peeled string
}

// keySHA is the SHA the cache key uses: the commit, except that an
// annotated tag kept with its .git counts by the tag object.
func (r *gitResolved) keySHA(keepGitDir bool) string {
	if r.Peeled != "" && !keepGitDir {
		return r.Peeled
	}
	return r.Commit
}

var commitSHA = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)

func (o *gitOp) CacheMap(ctx context.Context) (*solver.CacheMap, error) {
	r, err := o.resolve(ctx)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	o.resolved = r
	o.mu.Unlock()
	// --checksum only verifies the commit: as in BuildKit, it is not part
	// of the key, so the same ADD with and without it shares the cache.
	keyOp := o.op
	keyOp.Checksum = ""
	keyVertex := llb.NewVertex(keyOp, nil, llb.Meta{})
	return &solver.CacheMap{Digest: digest.FromString(string(keyVertex.Digest()) + "\n" + r.keySHA(o.op.KeepGitDir))}, nil
}

// resolve asks the remote which commit the op's ref names.
func (o *gitOp) resolve(ctx context.Context) (*gitResolved, error) {
	ref := o.op.Ref
	if commitSHA.MatchString(ref) {
		if o.op.Checksum != "" && !strings.HasPrefix(ref, o.op.Checksum) {
			return nil, fmt.Errorf("git source %s: expected checksum to match %s, got %s", redactURL(o.op.Remote), o.op.Checksum, ref)
		}
		return &gitResolved{Commit: ref}, nil
	}
	if ref == "" {
		out, err := o.git(ctx, "", "ls-remote", "--symref", "--", o.op.Remote, "HEAD")
		if err != nil {
			return nil, fmt.Errorf("git source %s: finding the default branch: %w", redactURL(o.op.Remote), err)
		}
		for _, line := range strings.Split(out, "\n") {
			if target, ok := strings.CutPrefix(line, "ref: "); ok {
				if name, rest, ok := strings.Cut(target, "\t"); ok && rest == "HEAD" {
					ref = name
				}
			}
		}
		if ref == "" {
			return nil, fmt.Errorf("git source %s: the remote has no default branch (HEAD)", redactURL(o.op.Remote))
		}
	}
	out, err := o.git(ctx, "", "ls-remote", "--", o.op.Remote, ref, ref+"^{}")
	if err != nil {
		return nil, fmt.Errorf("git source %s: %w", redactURL(o.op.Remote), err)
	}
	r, err := parseLsRemote(out, ref)
	if err != nil {
		return nil, fmt.Errorf("git source %s: %w", redactURL(o.op.Remote), err)
	}
	if c := o.op.Checksum; c != "" && !strings.HasPrefix(r.Commit, c) && (r.Peeled == "" || !strings.HasPrefix(r.Peeled, c)) {
		got := r.Commit
		if r.Peeled != "" {
			got += " or " + r.Peeled
		}
		return nil, fmt.Errorf("git source %s#%s: expected checksum to match %s, got %s", redactURL(o.op.Remote), ref, c, got)
	}
	return r, nil
}

// parseLsRemote picks ref in git ls-remote output the way git checkout
// does: a full ref name first, then a branch, then a tag.
func parseLsRemote(out, ref string) (*gitResolved, error) {
	var (
		partialRef = "refs/" + strings.TrimPrefix(ref, "refs/")
		headRef    = "refs/heads/" + strings.TrimPrefix(ref, "refs/heads/")
		tagRef     = "refs/tags/" + strings.TrimPrefix(ref, "refs/tags/")
		peeledRef  = tagRef + "^{}"
	)
	var sha, used, headSHA, tagSHA, peeled string
	for _, line := range strings.Split(out, "\n") {
		lineSHA, lineRef, _ := strings.Cut(strings.TrimSpace(line), "\t")
		switch lineRef {
		case headRef:
			headSHA = lineSHA
		case tagRef:
			tagSHA = lineSHA
		case peeledRef:
			peeled = lineSHA
		case partialRef:
			sha, used = lineSHA, lineRef
		}
	}
	if sha == "" && headSHA != "" {
		sha, used = headSHA, headRef
	}
	if sha != "" {
		peeled = ""
	}
	if sha == "" {
		sha, used = tagSHA, tagRef
	}
	if sha == "" {
		return nil, fmt.Errorf("repository does not contain ref %s", ref)
	}
	if !commitSHA.MatchString(sha) {
		return nil, fmt.Errorf("invalid commit sha %q for ref %s", sha, ref)
	}
	return &gitResolved{Ref: used, Commit: sha, Peeled: peeled}, nil
}

func (o *gitOp) Exec(ctx context.Context, _ []solver.Result) (solver.Result, error) {
	o.mu.Lock()
	r := o.resolved
	o.mu.Unlock()
	if r == nil {
		var err error
		if r, err = o.resolve(ctx); err != nil {
			return nil, err
		}
	}
	tmp, err := StateTempDir(o.w.stateDir(), "git")
	if err != nil {
		return nil, fmt.Errorf("git source %s: %w", redactURL(o.op.Remote), err)
	}
	defer os.RemoveAll(tmp)

	work := filepath.Join(tmp, "checkout")
	if err := o.checkout(ctx, r, work, filepath.Join(tmp, "git")); err != nil {
		return nil, err
	}
	src := "/"
	if sub := strings.TrimPrefix(path.Clean("/"+o.op.Subdir), "/"); sub != "" {
		fi, err := os.Lstat(filepath.Join(work, filepath.FromSlash(sub)))
		if err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("git source %s: subdir %s is not a directory in %s", redactURL(o.op.Remote), sub, r.Commit)
		}
		src = "/" + sub
	}
	return o.w.treeSnapshot(ctx, "git-", work, src, fmt.Sprintf("git source %s", redactURL(o.op.Remote)))
}

// checkout fetches r into work. The git dir is gitDir, outside the work
// tree, unless the .git directory is kept (and no subdir is taken).
func (o *gitOp) checkout(ctx context.Context, r *gitResolved, work, gitDir string) error {
	keep := o.op.KeepGitDir && strings.Trim(path.Clean("/"+o.op.Subdir), "/") == ""
	if keep {
		gitDir = filepath.Join(work, ".git")
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return fmt.Errorf("git source %s: %w", redactURL(o.op.Remote), err)
	}
	g := func(args ...string) error {
		_, err := o.git(ctx, work, append([]string{"--git-dir=" + gitDir, "--work-tree=" + work}, args...)...)
		if err != nil {
			return fmt.Errorf("git source %s: %w", redactURL(o.op.Remote), err)
		}
		return nil
	}
	initArgs := []string{"init", "-q", "--bare"}
	if len(r.Commit) == 64 {
		// A SHA-256 repository: the local one must use the same format.
		initArgs = append(initArgs, "--object-format=sha256")
	}
	if _, err := o.git(ctx, "", append(initArgs, gitDir)...); err != nil {
		return fmt.Errorf("git source %s: %w", redactURL(o.op.Remote), err)
	}
	if err := g("config", "core.bare", "false"); err != nil {
		return err
	}
	if err := g("remote", "add", "origin", o.op.Remote); err != nil {
		return err
	}
	want := r.Commit
	if r.Ref != "" {
		// A branch or tag: a shallow fetch of exactly that ref, as
		// servers always allow fetching advertised refs.
		refspec := "+" + r.Ref + ":" + r.Ref
		if err := g("fetch", "-q", "-u", "--depth=1", "--no-tags", "origin", refspec); err != nil {
			// A transport without shallow fetches ("dumb" HTTP, a
			// static file server): the ref with its history.
			if err := g("fetch", "-q", "-u", "--no-tags", "origin", refspec); err != nil {
				return err
			}
		}
		got, err := o.git(ctx, work, "--git-dir="+gitDir, "rev-parse", r.Ref)
		if err != nil {
			return fmt.Errorf("git source %s: %w", redactURL(o.op.Remote), err)
		}
		if strings.TrimSpace(got) != r.Commit {
			return fmt.Errorf("git source %s: %s moved to %s during the build (expected %s)", redactURL(o.op.Remote), r.Ref, strings.TrimSpace(got), r.Commit)
		}
	} else {
		// A commit: a shallow fetch by SHA where the server allows it,
		// else the whole history.
		if err := g("fetch", "-q", "--depth=1", "--no-tags", "origin", r.Commit); err != nil {
			if err := g("fetch", "-q", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*"); err != nil {
				return err
			}
		}
		if o.op.Checksum != "" && !strings.HasPrefix(r.Commit, o.op.Checksum) {
			return fmt.Errorf("git source %s: expected checksum to match %s, got %s", redactURL(o.op.Remote), o.op.Checksum, r.Commit)
		}
	}
	if err := g("-c", "advice.detachedHead=false", "checkout", "-q", "--detach", want); err != nil {
		return err
	}
	if !o.op.SkipSubmodules {
		if _, err := os.Stat(filepath.Join(work, ".gitmodules")); err == nil {
			if err := g("submodule", "update", "-q", "--init", "--recursive", "--depth=1"); err != nil {
				if err := g("submodule", "update", "-q", "--init", "--recursive"); err != nil {
					return err
				}
			}
		}
	}
	if keep {
		// Like BuildKit: no fetch leftovers, the ref the user named.
		os.Remove(filepath.Join(gitDir, "FETCH_HEAD"))
		if err := g("reflog", "expire", "--all", "--expire=now"); err != nil {
			return err
		}
		if err := g("remote", "set-url", "origin", redactURL(o.op.Remote)); err != nil {
			return err
		}
	}
	return nil
}

// git runs the git CLI with prompts off and returns its standard output.
func (o *gitOp) git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=true",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_SSH_COMMAND=ssh -o BatchMode=yes",
		"LC_ALL=C",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("git is not installed: %w", err)
		}
		// The message names the git command, not its whole command line:
		// that holds temporary paths of the build.
		if msg != "" {
			return "", fmt.Errorf("git %s failed: %s", gitVerb(args), redactURL(lastLines(msg, 5)))
		}
		return "", fmt.Errorf("git %s failed: %w", gitVerb(args), err)
	}
	return stdout.String(), nil
}

// gitVerb is the git subcommand of args ("fetch", "ls-remote"): the first
// argument that is not an option, skipping the values of -c and -C.
func gitVerb(args []string) string {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-c" || a == "-C":
			i++
		case strings.HasPrefix(a, "-"):
		default:
			return a
		}
	}
	return "command"
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// treeSnapshot commits a new snapshot holding the tree below dir/src (the
// contents of src), copied with modes, mtimes and owners kept.
func (w *Worker) treeSnapshot(ctx context.Context, prefix, dir, src, what string) (solver.Result, error) {
	st, err := w.newStep(ctx, prefix, "")
	if err != nil {
		return nil, err
	}
	defer st.discard(ctx)
	mounts := st.mounts
	op := llb.FileOp{Base: -1, Actions: []llb.FileAction{{Copy: &llb.Copy{
		Src: 0, SrcPaths: []string{src}, Dest: "/", DirContentsOnly: true,
	}}}}
	err = snapshot.WithMounts(ctx, [][]snapshot.Mount{mounts}, func(roots []string) error {
		return fileop.Apply(ctx, roots[0], []fileop.Input{{Root: dir}}, op)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: copying the checkout: %w", what, err)
	}
	return st.commit(ctx, &record{})
}
