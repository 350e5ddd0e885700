package fileop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/builderdev/builder/internal/fsutil"
)

// ErrNotFound is wrapped by errors about a missing source path.
var ErrNotFound = errors.New("not found")

// Input is one tree a file op reads from.
type Input struct {
	// Root is the host path of the tree ("" = empty tree).
	Root string
	// Excludes are .dockerignore patterns that hide paths of this input
	// (local context).
	Excludes []string
	// IgnoreFile names the file Excludes came from, in errors about an
	// excluded source ("" = ".dockerignore").
	IgnoreFile string
	// Local marks a local context: copied files default to owner 0:0 (as
	// docker build does), else the source owners are kept. A local
	// context's Root is a host path that every thread sees, so its files
	// are hashed on several goroutines (a snapshot's mount may exist in
	// the calling thread's mount namespace only).
	Local bool
}

// source is an Input opened for reading: its root and its ignore filter.
type source struct {
	root   string
	local  bool
	ignore *fsutil.PatternMatcher
	// ignoreFile names the ignore file in errors.
	ignoreFile string
	// visibleDirs caches whether a hidden dir holds a visible descendant.
	visibleDirs map[string]bool
}

func openSource(in Input) (*source, error) {
	pm, err := fsutil.NewPatternMatcher(in.Excludes)
	if err != nil {
		return nil, fmt.Errorf("input excludes: %w", err)
	}
	root := in.Root
	if root != "" {
		root = filepath.Clean(root)
	}
	ignoreFile := in.IgnoreFile
	if ignoreFile == "" {
		ignoreFile = ".dockerignore"
	}
	return &source{root: root, local: in.Local, ignore: pm, ignoreFile: ignoreFile, visibleDirs: map[string]bool{}}, nil
}

// hostPath returns the host path of a clean root-relative path.
func (s *source) hostPath(rel string) string {
	return filepath.Join(s.root, filepath.FromSlash(rel))
}

// resolve resolves p (relative to the source root, "/" = root) inside the
// root. With followLast the last component is followed when it is a
// symlink. It returns the clean slash-separated path relative to the root
// ("" for the root itself).
func (s *source) resolve(p string, followLast bool) (string, error) {
	if s.root == "" {
		return cleanRel(p), nil
	}
	var h string
	var err error
	if followLast {
		h, err = fsutil.ResolveInRoot(s.root, p)
	} else {
		h, err = fsutil.ResolveParentInRoot(s.root, p)
	}
	if err != nil {
		return "", unwrapPath(err)
	}
	r, err := filepath.Rel(s.root, h)
	if err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return "", fmt.Errorf("resolving %q: outside of the source root", p)
	}
	return cleanRel(r), nil
}

// cleanRel cleans p into a slash path relative to "/" ("" for the root).
func cleanRel(p string) string {
	return strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(p)), "/")
}

// lstat stats rel (already resolved) in the source; a hidden path reports
// hidden=true and err wrapping os.ErrNotExist.
func (s *source) lstat(rel string) (fi os.FileInfo, hidden bool, err error) {
	if s.root == "" {
		return nil, false, &os.PathError{Op: "lstat", Path: "/" + rel, Err: os.ErrNotExist}
	}
	fi, err = os.Lstat(s.hostPath(rel))
	if err != nil {
		return nil, false, err
	}
	if !s.visible(rel, fi) {
		return nil, true, &os.PathError{Op: "lstat", Path: "/" + rel, Err: os.ErrNotExist}
	}
	return fi, false, nil
}

// visible reports whether rel is part of the filtered tree: not hidden by
// the ignore patterns, or a hidden dir that holds a re-included path.
func (s *source) visible(rel string, fi os.FileInfo) bool {
	if rel == "" || !s.ignore.MatchesOrParentMatches(rel) {
		return true
	}
	if !fi.IsDir() || !s.ignore.ExceptionMayMatchUnder(rel) {
		return false
	}
	if v, ok := s.visibleDirs[rel]; ok {
		return v
	}
	found := false
	errStop := errors.New("stop")
	_ = fsutil.Walk(context.Background(), s.hostPath(rel), func(crel string, cfi os.FileInfo) (bool, bool) {
		full := path.Join(rel, crel)
		if !s.ignore.MatchesOrParentMatches(full) {
			return true, true
		}
		return false, cfi.IsDir() && s.ignore.ExceptionMayMatchUnder(full)
	}, func(string, os.FileInfo) error {
		found = true
		return errStop
	})
	s.visibleDirs[rel] = found
	return found
}

// containsWildcards reports whether p has an unescaped glob character.
func containsWildcards(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '*', '?', '[':
			return true
		}
	}
	return false
}

// splitWildcards splits p (clean, relative) into its leading components
// without wildcards and the rest.
func splitWildcards(p string) (literal, pattern []string) {
	comps := strings.Split(p, "/")
	for i, c := range comps {
		if containsWildcards(c) {
			return comps[:i], comps[i:]
		}
	}
	return comps, nil
}

// glob returns the root-relative paths matching the pattern p (relative to
// the root), sorted, hidden paths left out. The literal prefix is resolved
// following symlinks when follow is set; the matched paths are returned
// under that resolved prefix, unresolved themselves. Matching is per
// component with filepath.Match, as docker does.
//
// With anyDirs (COPY --parents, as BuildKit's include patterns) a "**"
// component matches zero or more directories; otherwise it is "*".
func (s *source) glob(p string, follow, anyDirs bool) ([]string, error) {
	if s.root == "" {
		return nil, nil
	}
	lit, pat := splitWildcards(cleanRel(p))
	base, err := s.resolve(strings.Join(lit, "/"), follow)
	if err != nil {
		return nil, err
	}
	if fi, _, err := s.lstat(base); err != nil || !fi.IsDir() {
		return nil, nil
	}
	for _, c := range pat {
		if _, err := filepath.Match(c, ""); err != nil {
			return nil, fmt.Errorf("invalid pattern %q: %w", p, err)
		}
	}
	var out []string
	seen := map[string]bool{}
	var rec func(dir string, i int) error
	rec = func(dir string, i int) error {
		if pat[i] == "**" && anyDirs {
			return s.globAny(dir, pat, i, rec, func(p string) {
				if !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
			})
		}
		names, err := fsutil.ReadDirNames(s.hostPath(dir))
		if err != nil {
			return err
		}
		for _, n := range names {
			if ok, _ := filepath.Match(pat[i], n); !ok {
				continue
			}
			rel := path.Join(dir, n)
			fi, _, err := s.lstat(rel)
			if err != nil {
				continue
			}
			if i == len(pat)-1 {
				if !seen[rel] {
					seen[rel] = true
					out = append(out, rel)
				}
			} else if fi.IsDir() {
				if err := rec(rel, i+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := rec(base, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// globAny matches the "**" component pat[i] at dir: zero or more
// directories (as in BuildKit's --parents patterns, src/**/*.go). A
// trailing "**" matches dir itself (copying it copies everything below).
func (s *source) globAny(dir string, pat []string, i int, rec func(string, int) error, add func(string)) error {
	if i == len(pat)-1 {
		if dir != "" {
			add(dir)
		}
		return nil
	}
	// Zero directories: the rest of the pattern at dir.
	if err := rec(dir, i+1); err != nil {
		return err
	}
	names, err := fsutil.ReadDirNames(s.hostPath(dir))
	if err != nil {
		return err
	}
	for _, n := range names {
		rel := path.Join(dir, n)
		fi, _, err := s.lstat(rel)
		if err != nil || !fi.IsDir() {
			continue
		}
		// One more directory, same "**".
		if err := s.globAny(rel, pat, i, rec, add); err != nil {
			return err
		}
	}
	return nil
}
