package fileop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/llb"
)

// Apply applies op.Actions in order to the tree at dest (a host path: the
// mounted Base input, or an empty dir for scratch). inputs are indexed like
// the vertex's inputs; Copy.Src indexes them.
func Apply(ctx context.Context, dest string, inputs []Input, op llb.FileOp) error {
	if dest == "" {
		return errors.New("file op: empty destination root")
	}
	dest = filepath.Clean(dest)
	for _, a := range op.Actions {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		switch {
		case a.Copy != nil:
			err = doCopy(ctx, dest, inputs, a.Copy)
		case a.Mkdir != nil:
			err = doMkdir(dest, a.Mkdir)
		case a.Mkfile != nil:
			err = doMkfile(dest, a.Mkfile)
		case a.Rm != nil:
			err = doRm(dest, a.Rm)
		default:
			err = errors.New("empty action")
		}
		if err != nil {
			// Each action's error names its paths; the action index
			// means nothing to the user.
			return err
		}
	}
	return nil
}

// ApplyReuse is Apply for an op that may start from a clone of a previous
// result (reuse, see Reuse; nil for none). Only an op of a single Copy
// uses it. reusable reports that this result may be the clone of a later
// run of the same op on the same parent: a single copy of a local
// directory's contents onto a destination the parent does not have.
func ApplyReuse(ctx context.Context, dest string, inputs []Input, op llb.FileOp, reuse *Reuse) (reusable bool, err error) {
	if len(op.Actions) != 1 || op.Actions[0].Copy == nil {
		if reuse != nil {
			return false, errors.New("file op: a clone of a previous result is only for a single copy")
		}
		return false, Apply(ctx, dest, inputs, op)
	}
	if dest == "" {
		return false, errors.New("file op: empty destination root")
	}
	reusable, err = doCopyReuse(ctx, filepath.Clean(dest), inputs, op.Actions[0].Copy, reuse)
	if err != nil {
		// The copy's error names its paths; no action index.
		return false, err
	}
	return reusable, nil
}

// cleanDest cleans p to an absolute path, keeping a trailing "/" or "/."
// that marks a directory.
func cleanDest(p string) (clean string, dirish bool) {
	p = filepath.ToSlash(p)
	c := path.Clean("/" + p)
	dirish = c == "/" || strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || p == "."
	return c, dirish
}

func doMkdir(root string, m *llb.Mkdir) error {
	p, _ := cleanDest(m.Path)
	owner, err := resolveChown(root, m.Chown)
	if err != nil {
		return fmt.Errorf("mkdir %s: %w", p, err)
	}
	mode := fsutil.GoMode(fsutil.UnixMode(m.Mode))
	if m.MakeParents {
		created, err := missingDirs(root, p)
		if err != nil {
			return fmt.Errorf("mkdir -p %s: %w", p, err)
		}
		if _, err := fsutil.MkdirAllInRoot(root, p, mode, owner); err != nil {
			return fmt.Errorf("mkdir -p %s: %w", p, unwrapPath(err))
		}
		return setDirTimes(root, created, m.Timestamp)
	}
	h, err := fsutil.ResolveInRoot(root, p)
	if err != nil {
		return fmt.Errorf("mkdir %s: %w", p, unwrapPath(err))
	}
	if err := os.Mkdir(h, mode.Perm()); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil
		}
		return fmt.Errorf("mkdir %s: %w", p, unwrapPath(err))
	}
	if err := os.Chmod(h, mode); err != nil {
		return fmt.Errorf("mkdir %s: %w", p, unwrapPath(err))
	}
	if owner != nil {
		if err := os.Lchown(h, owner.UID, owner.GID); err != nil {
			return fmt.Errorf("mkdir %s: %w", p, unwrapPath(err))
		}
	}
	return setDirTimes(root, []string{p}, m.Timestamp)
}

// missingDirs lists p and its parents that do not exist yet under root,
// outermost first (what mkdir -p p will create).
func missingDirs(root, p string) ([]string, error) {
	var out []string
	for cur := p; cur != "/"; cur = path.Dir(cur) {
		h, err := fsutil.ResolveInRoot(root, cur)
		if err != nil {
			return nil, err
		}
		if _, err := os.Lstat(h); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, unwrapPath(err)
		}
		out = append([]string{cur}, out...)
	}
	return out, nil
}

// setDirTimes sets the times of the directories dirs (paths in root) to
// ts, as BuildKit's mkdir does with a created time; nil ts does nothing.
func setDirTimes(root string, dirs []string, ts *int64) error {
	if ts == nil {
		return nil
	}
	tm := time.Unix(*ts, 0)
	for _, d := range dirs {
		h, err := fsutil.ResolveInRoot(root, d)
		if err != nil {
			return fmt.Errorf("mkdir %s: %w", d, err)
		}
		if err := os.Chtimes(h, tm, tm); err != nil {
			return fmt.Errorf("mkdir %s: setting times: %w", d, unwrapPath(err))
		}
	}
	return nil
}

// unwrapPath drops the host path of an *os.PathError (the caller names the
// path inside the tree).
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

func doMkfile(root string, m *llb.Mkfile) error {
	p, _ := cleanDest(m.Path)
	if p == "/" {
		return fmt.Errorf("mkfile %s: %w", p, syscall.EISDIR)
	}
	owner, err := resolveChown(root, m.Chown)
	if err != nil {
		return fmt.Errorf("mkfile %s: %w", p, unwrapPath(err))
	}
	h, err := fsutil.ResolveInRoot(root, p)
	if err != nil {
		return fmt.Errorf("mkfile %s: %w", p, unwrapPath(err))
	}
	// Write beside the target and rename over it: the target is never
	// opened, so a symlink or device there is replaced, not written through.
	f, err := os.CreateTemp(filepath.Dir(h), ".mkfile-")
	if err != nil {
		return fmt.Errorf("mkfile %s: %w", p, unwrapPath(err))
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(m.Data); err != nil {
		f.Close()
		return fmt.Errorf("mkfile %s: %w", p, unwrapPath(err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("mkfile %s: %w", p, unwrapPath(err))
	}
	if owner != nil {
		if err := os.Lchown(tmp, owner.UID, owner.GID); err != nil {
			return fmt.Errorf("mkfile %s: %w", p, unwrapPath(err))
		}
	}
	if err := os.Chmod(tmp, fsutil.GoMode(fsutil.UnixMode(m.Mode))); err != nil {
		return fmt.Errorf("mkfile %s: %w", p, unwrapPath(err))
	}
	if err := os.Rename(tmp, h); err != nil {
		return fmt.Errorf("mkfile %s: %w", p, unwrapPath(err))
	}
	ok = true
	return nil
}

func doRm(root string, r *llb.Rm) error {
	p, _ := cleanDest(r.Path)
	if r.AllowWildcard && containsWildcards(p) {
		s := &source{root: root, visibleDirs: map[string]bool{}}
		matches, err := s.glob(p, false, false)
		if err != nil {
			return fmt.Errorf("rm %s: %w", p, unwrapPath(err))
		}
		for _, m := range matches {
			if err := rmPath(root, "/"+m, r.AllowNotFound); err != nil {
				return err
			}
		}
		return nil
	}
	return rmPath(root, p, r.AllowNotFound)
}

func rmPath(root, p string, allowNotFound bool) error {
	if p == "/" {
		return fmt.Errorf("rm %s: refusing to remove the root", p)
	}
	h, err := fsutil.ResolveParentInRoot(root, p)
	if err != nil {
		return fmt.Errorf("rm %s: %w", p, unwrapPath(err))
	}
	if _, err := os.Lstat(h); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if allowNotFound {
				return nil
			}
			return fmt.Errorf("rm %s: %w", p, ErrNotFound)
		}
		return fmt.Errorf("rm %s: %w", p, unwrapPath(err))
	}
	if err := os.RemoveAll(h); err != nil {
		return fmt.Errorf("rm %s: %w", p, unwrapPath(err))
	}
	return nil
}
