package fsutil

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
)

// WalkFunc is called for every kept entry of a walk with its slash-separated
// path relative to the walk root and its Lstat info.
type WalkFunc func(rel string, fi os.FileInfo) error

// Filter decides about an entry of a walk: keep reports whether the entry is
// part of the tree; descend, for a dropped directory, whether its children
// may still be kept (a kept child then brings its dropped parents back, as an
// excluded directory that holds a re-included file does).
type Filter func(rel string, fi os.FileInfo) (keep, descend bool)

// ExcludeFilter is the Filter of .dockerignore patterns: pm hides the paths
// it matches (with the parents-match rule), and dirs are still walked when an
// exception may re-include something below them. A nil or empty pm keeps
// everything.
func ExcludeFilter(pm *PatternMatcher) Filter {
	return func(rel string, fi os.FileInfo) (bool, bool) {
		if !pm.MatchesOrParentMatches(rel) {
			return true, true
		}
		return false, fi.IsDir() && pm.ExceptionMayMatchUnder(rel)
	}
}

// Walk walks the tree at root in lexical order (pre-order, names sorted
// bytewise), without following symlinks, calling fn for every entry that
// filter keeps (nil keeps all). The root itself is not reported. Dropped
// directories whose descendants are kept are reported just before their
// first kept descendant.
func Walk(ctx context.Context, root string, filter Filter, fn WalkFunc) error {
	w := &walker{ctx: ctx, filter: filter, fn: fn}
	return w.dir(root, "")
}

type pendingDir struct {
	rel string
	fi  os.FileInfo
}

type walker struct {
	ctx     context.Context
	filter  Filter
	fn      WalkFunc
	pending []pendingDir
}

// ReadDirNames returns the sorted names of the entries of dir.
func ReadDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("reading directory %s: %w", dir, err)
	}
	sort.Strings(names)
	return names, nil
}

func (w *walker) dir(host, rel string) error {
	infos, err := ReadDirLstat(host)
	if err != nil {
		return err
	}
	for _, fi := range infos {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		name := fi.Name()
		chost := filepath.Join(host, name)
		crel := path.Join(rel, name)
		keep, descend := true, true
		if w.filter != nil {
			keep, descend = w.filter(crel, fi)
		}
		if keep {
			if err := w.flush(); err != nil {
				return err
			}
			if err := w.fn(crel, fi); err != nil {
				return err
			}
			if fi.IsDir() {
				if err := w.dir(chost, crel); err != nil {
					return err
				}
			}
			continue
		}
		if fi.IsDir() && descend {
			w.pending = append(w.pending, pendingDir{crel, fi})
			n := len(w.pending)
			if err := w.dir(chost, crel); err != nil {
				return err
			}
			if len(w.pending) >= n {
				w.pending = w.pending[:n-1]
			}
		}
	}
	return nil
}

// flush reports the dropped parents waiting for a kept descendant.
func (w *walker) flush() error {
	for _, p := range w.pending {
		if err := w.fn(p.rel, p.fi); err != nil {
			return err
		}
	}
	w.pending = w.pending[:0]
	return nil
}
