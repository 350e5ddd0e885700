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

	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/snapshot/fsutil"
	"golang.org/x/sys/unix"
)

// copySource is one path a Copy reads, after wildcard expansion.
type copySource struct {
	// spec is the SrcPaths entry it comes from (for error messages).
	spec string
	// named is the root-relative path as named (unresolved, clean).
	named string
	// rel is the root-relative path after resolution (last component
	// followed with FollowSymlinks).
	rel string
	fi  os.FileInfo
	// wildcard is set when the path was matched by a glob.
	wildcard bool
	// parents (COPY --parents) is the path to recreate under the
	// destination, relative to the pivot ("" when not in parents mode).
	parents string
	// pivotRel is the resolved root-relative pivot (parents mode).
	pivotRel string
}

// sources expands and checks the source paths of c.
func sources(s *source, c *llb.Copy, excl *fsutil.PatternMatcher) ([]copySource, error) {
	var out []copySource
	for _, spec := range c.SrcPaths {
		pivot, pat := "", spec
		if c.Parents {
			if a, b, ok := strings.Cut(spec, "/./"); ok {
				pivot, pat = cleanRel(a), path.Join(cleanRel(a), b)
			}
		}
		p := cleanRel(pat)
		var matches []string
		wildcard := c.AllowWildcard && containsWildcards(p)
		if wildcard {
			m, err := s.glob(p, c.FollowSymlinks, c.Parents)
			if err != nil {
				return nil, fmt.Errorf("source %q: %w", spec, err)
			}
			if len(m) == 0 {
				if c.AllowEmptyWildcard {
					continue
				}
				return nil, fmt.Errorf("source %q: no files match the pattern: %w", spec, ErrNotFound)
			}
			matches = m
		} else {
			matches = []string{p}
		}
		pivotRel := ""
		if c.Parents && containsWildcards(pivot) {
			// The pivot is a pattern itself (/test/a/b*/./c): each match
			// pivots at its own first components.
			n := len(strings.Split(pivot, "/"))
			for _, m := range matches {
				cs, err := statSource(s, spec, m, c.FollowSymlinks)
				if err != nil {
					return nil, err
				}
				comps := strings.Split(m, "/")
				if len(comps) <= n {
					continue
				}
				cs.wildcard = wildcard
				cs.pivotRel = strings.Join(comps[:n], "/")
				cs.parents = strings.Join(comps[n:], "/")
				out = append(out, cs)
			}
			continue
		}
		if c.Parents && pivot != "" {
			r, err := s.resolve(pivot, true)
			if err != nil {
				return nil, fmt.Errorf("source %q: %w", spec, err)
			}
			pivotRel = r
		}
		for _, m := range matches {
			cs, err := statSource(s, spec, m, c.FollowSymlinks)
			if err != nil {
				return nil, err
			}
			cs.wildcard = wildcard
			if wildcard && !cs.fi.IsDir() && excl.MatchesOrParentMatches(path.Base(m)) {
				// COPY --exclude=*.txt hom* drops matched files too.
				continue
			}
			if c.Parents {
				cs.pivotRel = pivotRel
				switch {
				case pivotRel == "":
					cs.parents = m
				case m == pivotRel || m == pivot:
					cs.parents = ""
				case strings.HasPrefix(m, pivotRel+"/"):
					cs.parents = strings.TrimPrefix(m, pivotRel+"/")
				case strings.HasPrefix(m, pivot+"/"):
					cs.parents = strings.TrimPrefix(m, pivot+"/")
				default:
					cs.parents = m
				}
			}
			out = append(out, cs)
		}
	}
	return out, nil
}

// parentsPivotExists reports whether a --parents copy has a source whose
// pivot (the part before "/./", the root without one) is an existing
// directory.
func parentsPivotExists(s *source, c *llb.Copy) bool {
	for _, spec := range c.SrcPaths {
		pivot := ""
		if a, _, ok := strings.Cut(spec, "/./"); ok {
			pivot = cleanRel(a)
		}
		if containsWildcards(pivot) {
			continue
		}
		rel, err := s.resolve(pivot, true)
		if err != nil {
			continue
		}
		if fi, _, err := s.lstat(rel); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

// statSource resolves and stats the root-relative path m of a source.
func statSource(s *source, spec, m string, follow bool) (copySource, error) {
	notFound := func(hidden bool) error {
		if hidden {
			return fmt.Errorf("source %q: %w: excluded by .dockerignore", spec, ErrNotFound)
		}
		return fmt.Errorf("source %q: %w", spec, ErrNotFound)
	}
	named, err := s.resolve(m, false)
	if err != nil {
		return copySource{}, fmt.Errorf("source %q: %w", spec, err)
	}
	if _, hidden, err := s.lstat(named); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return copySource{}, notFound(hidden)
		}
		return copySource{}, fmt.Errorf("source %q: %w", spec, unwrapPath(err))
	}
	rel := named
	if follow {
		if rel, err = s.resolve(m, true); err != nil {
			return copySource{}, fmt.Errorf("source %q: %w", spec, err)
		}
	}
	fi, hidden, err := s.lstat(rel)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return copySource{}, notFound(hidden)
		}
		return copySource{}, fmt.Errorf("source %q: %w", spec, unwrapPath(err))
	}
	return copySource{spec: spec, named: m, rel: rel, fi: fi}, nil
}

// keep reports whether the entry rel (root-relative; comp relative to the
// copied source) is part of what a copy reads.
// keptChildren calls fn, in name order, for each child of the source
// directory host (rel in the source, comp in the copy) that keep lets
// through; children that vanish meanwhile are skipped.
func keptChildren(s *source, excl *fsutil.PatternMatcher, host, rel, comp string, fn func(chost, crel, ccomp string, cfi os.FileInfo) error) error {
	names, err := fsutil.ReadDirNames(host)
	if err != nil {
		return err
	}
	for _, n := range names {
		chost := filepath.Join(host, n)
		cfi, err := os.Lstat(chost)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return err
		}
		crel, ccomp := path.Join(rel, n), path.Join(comp, n)
		if !keep(s, excl, crel, ccomp, cfi) {
			continue
		}
		if err := fn(chost, crel, ccomp, cfi); err != nil {
			return err
		}
	}
	return nil
}

func keep(s *source, excl *fsutil.PatternMatcher, rel, comp string, fi os.FileInfo) bool {
	if !s.visible(rel, fi) {
		return false
	}
	if excl.MatchesOrParentMatches(comp) {
		return fi.IsDir() && excl.ExceptionMayMatchUnder(comp)
	}
	return true
}

type inodeKey struct{ dev, ino uint64 }

// copier copies the entries of one Copy action.
type copier struct {
	ctx    context.Context
	s      *source
	root   string // destination root
	excl   *fsutil.PatternMatcher
	owner  *fsutil.Owner
	mode   *modeSpec
	inodes map[inodeKey]string
	isRoot bool
}

func doCopy(ctx context.Context, root string, inputs []Input, c *llb.Copy) error {
	if c.Src < 0 || c.Src >= len(inputs) {
		return fmt.Errorf("copy: source input %d out of range (%d inputs)", c.Src, len(inputs))
	}
	s, err := openSource(inputs[c.Src])
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	excl, err := fsutil.NewPatternMatcher(c.ExcludePatterns)
	if err != nil {
		return fmt.Errorf("copy: exclude patterns: %w", err)
	}
	ms, err := parseMode(c.Chmod)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	owner, err := resolveChown(root, c.Chown)
	if err != nil {
		return fmt.Errorf("copy: chown: %w", err)
	}
	srcs, err := sources(s, c, excl)
	if err != nil {
		if c.SrcName != "" {
			return fmt.Errorf("copy from %s: %w", c.SrcName, err)
		}
		return fmt.Errorf("copy: %w", err)
	}
	dest, dirish := cleanDest(c.Dest)
	destHost, err := fsutil.ResolveInRoot(root, dest)
	if err != nil {
		return fmt.Errorf("copy: dest %s: %w", dest, unwrapPath(err))
	}
	if !c.CreateDestPath && dest != "/" {
		if _, err := os.Lstat(filepath.Dir(destHost)); err != nil {
			return fmt.Errorf("copy: failed to stat parent of %s: %w", dest, unwrapPath(err))
		}
	}
	// Several sources in one action need a directory; the matches of one
	// wildcard do not: as in BuildKit, each is copied (or unpacked) in turn
	// to dest, so directories merge and archives extract into it.
	if len(c.SrcPaths) > 1 && !dirish {
		if fi, err := os.Stat(destHost); err != nil || !fi.IsDir() {
			return fmt.Errorf("copy to %s: When using COPY with more than one source file, the destination must be a directory and end with a /", dest)
		}
	}
	if len(srcs) == 0 {
		if c.Parents && c.CreateDestPath && parentsPivotExists(s, c) {
			// BuildKit copies the pivot dir filtered by the pattern:
			// the destination exists even when nothing matched.
			if _, err := fsutil.MkdirAllInRoot(root, dest, createdDirMode(ms), owner); err != nil {
				return fmt.Errorf("copy: creating %s: %w", dest, unwrapPath(err))
			}
		}
		return nil
	}
	// Create the destination dir (dest/) or the parent of dest, owned by
	// the chown user as in BuildKit.
	mk := dest
	if !dirish {
		mk = path.Dir(dest)
	}
	if _, err := fsutil.MkdirAllInRoot(root, mk, createdDirMode(ms), owner); err != nil {
		return fmt.Errorf("copy: creating %s: %w", mk, unwrapPath(err))
	}
	if destHost, err = fsutil.ResolveInRoot(root, dest); err != nil {
		return fmt.Errorf("copy: dest %s: %w", dest, unwrapPath(err))
	}
	cp := &copier{
		ctx: ctx, s: s, root: root, excl: excl, owner: owner, mode: ms,
		inodes: map[inodeKey]string{}, isRoot: os.Geteuid() == 0,
	}
	for _, src := range srcs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if c.AttemptUnpack && src.fi.Mode().IsRegular() {
			ok, err := unpackArchive(ctx, s.hostPath(src.rel), root, dest, owner)
			if err != nil {
				return fmt.Errorf("copy: unpacking %s: %w", src.spec, err)
			}
			if ok {
				continue
			}
		}
		if err := cp.copySource(src, destHost, c); err != nil {
			return fmt.Errorf("copy %s to %s: %w", src.spec, dest, err)
		}
	}
	return nil
}

func (cp *copier) copySource(src copySource, destHost string, c *llb.Copy) error {
	if c.Parents && src.parents != "" {
		// Recreate the parents of the source between the pivot and it,
		// with the metadata of the source dirs.
		dirs := strings.Split(src.parents, "/")
		target := destHost
		srel := src.pivotRel
		for _, d := range dirs[:len(dirs)-1] {
			target = filepath.Join(target, d)
			srel = path.Join(srel, d)
			fi, err := os.Lstat(cp.s.hostPath(srel))
			if err != nil {
				return unwrapPath(err)
			}
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", "/"+srel)
			}
			created, err := cp.mkdirOnly(target, fi, false)
			if err != nil {
				return err
			}
			if created {
				if err := cp.meta(fi, cp.s.hostPath(srel), target); err != nil {
					return err
				}
			}
		}
		return cp.copy(cp.s.hostPath(src.rel), src.rel, "", filepath.Join(target, dirs[len(dirs)-1]), false)
	}
	var fiDest os.FileInfo
	if fi, err := os.Stat(destHost); err == nil {
		fiDest = fi
	}
	target := destHost
	isDir := src.fi.IsDir()
	if (!c.DirContentsOnly && isDir && fiDest != nil) || (!isDir && fiDest != nil && fiDest.IsDir()) {
		if b := path.Base("/" + src.named); b != "/" {
			target = filepath.Join(destHost, b)
		}
	}
	// The parent of the target (the target itself for the contents of a
	// dir) is created inside the root, after dest was resolved; as in
	// BuildKit's fsutil copy it gets createdDirMode, not the source dir's
	// metadata.
	mk := filepath.Dir(target)
	if c.DirContentsOnly && isDir && fiDest == nil {
		mk = target
	}
	if _, err := fsutil.MkdirAllInRoot(cp.root, cp.destName(mk), createdDirMode(cp.mode), cp.owner); err != nil {
		return err
	}
	return cp.copy(cp.s.hostPath(src.rel), src.rel, "", target, false)
}

// createdDirMode is the mode of a directory a copy creates on the way to its
// destination: an octal --chmod, else 0755, as BuildKit's fsutil copy does
// (testCopyChmod: COPY --chmod=777 foo /parent/foo makes /parent 0777; a
// symbolic --chmod leaves them 0755).
func createdDirMode(ms *modeSpec) os.FileMode {
	if ms == nil || !ms.octal {
		return os.ModeDir | 0o755
	}
	return os.ModeDir | fsutil.GoMode(ms.mode)
}

// destName names a host path of the destination tree for messages.
func (cp *copier) destName(p string) string {
	r, err := filepath.Rel(cp.root, p)
	if err != nil {
		return p
	}
	return "/" + filepath.ToSlash(r)
}

// copy copies the source entry at host (root-relative rel, comp relative to
// the copied source) to target. overwrite says whether an existing dir at
// target takes the metadata of the source dir (true below the top).
func (cp *copier) copy(host, rel, comp, target string, overwrite bool) error {
	if err := cp.ctx.Err(); err != nil {
		return err
	}
	fi, err := os.Lstat(host)
	if err != nil {
		return fmt.Errorf("stat %s: %w", "/"+rel, unwrapPath(err))
	}
	copyMeta := true
	switch m := fi.Mode(); {
	case m.IsDir():
		created, err := cp.mkdirOnly(target, fi, overwrite)
		if err != nil {
			return err
		}
		err = keptChildren(cp.s, cp.excl, host, rel, comp, func(chost, crel, ccomp string, cfi os.FileInfo) error {
			return cp.copy(chost, crel, ccomp, filepath.Join(target, path.Base(crel)), true)
		})
		if err != nil {
			return err
		}
		copyMeta = created || overwrite
	case m.IsRegular():
		if err := cp.clearTarget(target); err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		if st != nil && st.Nlink > 1 {
			k := inodeKey{uint64(st.Dev), st.Ino}
			if prev, ok := cp.inodes[k]; ok {
				if err := os.Link(prev, target); err != nil {
					return fmt.Errorf("hard link %s: %w", cp.destName(target), unwrapPath(err))
				}
				break
			}
			cp.inodes[k] = target
		}
		if err := fsutil.CopyFileData(target, host); err != nil {
			return fmt.Errorf("copying %s to %s: %w", "/"+rel, cp.destName(target), unwrapPath(err))
		}
	case m&os.ModeSymlink != 0:
		if err := cp.clearTarget(target); err != nil {
			return err
		}
		link, err := os.Readlink(host)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", "/"+rel, unwrapPath(err))
		}
		if err := os.Symlink(link, target); err != nil {
			return fmt.Errorf("symlink %s: %w", cp.destName(target), unwrapPath(err))
		}
	case m&(os.ModeDevice|os.ModeNamedPipe) != 0:
		if err := cp.clearTarget(target); err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no device numbers", "/"+rel)
		}
		if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod %s: %w", cp.destName(target), err)
		}
	case m&os.ModeSocket != 0 && cp.s.local:
		// A socket of the build context arrives as an empty regular file,
		// as BuildKit's context transfer sends it (testCopySocket).
		if err := cp.clearTarget(target); err != nil {
			return err
		}
		if err := os.WriteFile(target, nil, 0o600); err != nil {
			return fmt.Errorf("creating %s: %w", cp.destName(target), unwrapPath(err))
		}
	default:
		// Sockets of a stage cannot be copied.
		return nil
	}
	if copyMeta {
		return cp.meta(fi, host, target)
	}
	return nil
}

// clearTarget removes a non-directory at target so a file can be created
// there; a directory is an error.
func (cp *copier) clearTarget(target string) error {
	fi, err := os.Lstat(target)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return unwrapPath(err)
	}
	if fi.IsDir() {
		return fmt.Errorf("cannot replace directory %s with a file", cp.destName(target))
	}
	return os.Remove(target)
}

// mkdirOnly makes the directory target unless it exists; an existing
// non-directory (a symlink included) is an error.
func (cp *copier) mkdirOnly(target string, fi os.FileInfo, overwrite bool) (bool, error) {
	st, err := os.Lstat(target)
	if err == nil {
		if !st.IsDir() {
			return false, fmt.Errorf("cannot copy to non-directory: %s", cp.destName(target))
		}
		return false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return false, unwrapPath(err)
	}
	if err := os.Mkdir(target, fi.Mode().Perm()|0o700); err != nil {
		return false, fmt.Errorf("mkdir %s: %w", cp.destName(target), unwrapPath(err))
	}
	return true, nil
}

// meta copies owner, mode, xattrs and times of the source entry to target.
func (cp *copier) meta(fi os.FileInfo, host, target string) error {
	uid, gid := 0, 0
	switch {
	case cp.owner != nil:
		uid, gid = cp.owner.UID, cp.owner.GID
	case cp.s.local:
	default:
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	if cp.isRoot || cp.owner != nil {
		if err := os.Lchown(target, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", cp.destName(target), unwrapPath(err))
		}
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		mode := fsutil.UnixMode(fi.Mode())
		if cp.mode != nil {
			mode = cp.mode.apply(mode, fi.IsDir())
		}
		if err := os.Chmod(target, fsutil.GoMode(mode)); err != nil {
			return fmt.Errorf("chmod %s: %w", cp.destName(target), unwrapPath(err))
		}
	}
	if err := fsutil.CopyXattrs(target, host); err != nil {
		return err
	}
	atime, mtime := fsutil.StatTimes(fi)
	if err := fsutil.Lutimes(target, atime, mtime); err != nil {
		return fmt.Errorf("utimes %s: %w", cp.destName(target), unwrapPath(err))
	}
	return nil
}
