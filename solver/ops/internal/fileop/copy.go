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

	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/llb"
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
			return fmt.Errorf("source %q: %w: excluded by %s", spec, ErrNotFound, s.ignoreFile)
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
	infos, err := fsutil.ReadDirLstat(host)
	if err != nil {
		return err
	}
	for _, cfi := range infos {
		n := cfi.Name()
		chost := filepath.Join(host, n)
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

// copier copies the entries of one Copy action. The walk (directories,
// symlinks, devices, hard links) runs in the calling goroutine; regular
// files go to a small pool of workers (files). A directory's metadata is
// set once everything is copied (dirMeta, children first), since creating
// entries in a directory changes its times.
type copier struct {
	ctx     context.Context
	s       *source
	root    string // destination root
	excl    *fsutil.PatternMatcher
	owner   *fsutil.Owner
	mode    *modeSpec
	inodes  map[inodeKey]string
	isRoot  bool
	fc      *fsutil.FileCopier
	files   *filePool
	dirMeta []metaJob
	// dstDir and srcDir are descriptors of root and of the source root,
	// for the file workers.
	dstDir, srcDir int
	// reuse is set when root holds a clone of a previous result of this
	// copy (see Reuse); visited then collects the targets the copy wrote
	// or kept, and topTarget is the target of the source.
	reuse     *Reuse
	visited   map[string]bool
	topTarget string
	// topCreated says the destination did not exist before the copy;
	// reusable that the copy fits a reuse (reusableCopy).
	topCreated, reusable bool
}

// metaJob is deferred metadata of a directory.
type metaJob struct {
	fi           os.FileInfo
	host, target string
}

func doCopy(ctx context.Context, root string, inputs []Input, c *llb.Copy) error {
	_, err := doCopyReuse(ctx, root, inputs, c, nil)
	return err
}

// doCopyReuse is doCopy onto a root that, with reuse, holds a clone of a
// previous result of the same copy. reusable reports that a later copy may
// start from this result: one source from a local context, copied as is
// onto a target that did not exist (so the parent tree has nothing there).
func doCopyReuse(ctx context.Context, root string, inputs []Input, c *llb.Copy, reuse *Reuse) (reusable bool, err error) {
	if c.Src < 0 || c.Src >= len(inputs) {
		return false, fmt.Errorf("copy: source input %d out of range (%d inputs)", c.Src, len(inputs))
	}
	cp, err := copyAll(ctx, root, inputs, c, reuse)
	if err != nil || cp == nil {
		return false, err
	}
	return inputs[c.Src].Local && cp.reusable && (cp.reuse != nil || cp.topCreated), nil
}

// reusableCopy says whether a copy of srcs can start from a clone of a
// previous result: the contents of one directory, as is.
func reusableCopy(c *llb.Copy, srcs []copySource) bool {
	return len(srcs) == 1 && srcs[0].fi.IsDir() && c.DirContentsOnly && !c.Parents && !c.AttemptUnpack
}

// copyAll runs Copy c and returns its copier (nil when nothing matched).
func copyAll(ctx context.Context, root string, inputs []Input, c *llb.Copy, reuse *Reuse) (*copier, error) {
	s, err := openSource(inputs[c.Src])
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	excl, err := fsutil.NewPatternMatcher(c.ExcludePatterns)
	if err != nil {
		return nil, fmt.Errorf("copy: exclude patterns: %w", err)
	}
	ms, err := parseMode(c.Chmod)
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	owner, err := resolveChown(root, c.Chown)
	if err != nil {
		return nil, fmt.Errorf("copy: chown: %w", err)
	}
	srcs, err := sources(s, c, excl)
	if err != nil {
		if c.SrcName != "" {
			return nil, fmt.Errorf("copy from %s: %w", c.SrcName, err)
		}
		return nil, fmt.Errorf("copy: %w", err)
	}
	dest, dirish := cleanDest(c.Dest)
	destHost, err := fsutil.ResolveInRoot(root, dest)
	if err != nil {
		return nil, fmt.Errorf("copy: dest %s: %w", dest, unwrapPath(err))
	}
	_, err = os.Lstat(destHost)
	absent := errors.Is(err, os.ErrNotExist)
	reusable := reusableCopy(c, srcs)
	if reuse != nil && !reusable {
		// The clone does not fit this copy (the source is no longer a
		// directory): drop it, it is all below the target.
		if err := os.RemoveAll(destHost); err != nil {
			return nil, fmt.Errorf("copy: dest %s: %w", dest, unwrapPath(err))
		}
		reuse = nil
	}
	if !c.CreateDestPath && dest != "/" {
		if _, err := os.Lstat(filepath.Dir(destHost)); err != nil {
			return nil, fmt.Errorf("copy: failed to stat parent of %s: %w", dest, unwrapPath(err))
		}
	}
	// Several sources in one action need a directory; the matches of one
	// wildcard do not: as in BuildKit, each is copied (or unpacked) in turn
	// to dest, so directories merge and archives extract into it.
	if len(c.SrcPaths) > 1 && !dirish {
		if fi, err := os.Stat(destHost); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("copy to %s: When using COPY with more than one source file, the destination must be a directory and end with a /", dest)
		}
	}
	if len(srcs) == 0 {
		if c.Parents && c.CreateDestPath && parentsPivotExists(s, c) {
			// BuildKit copies the pivot dir filtered by the pattern:
			// the destination exists even when nothing matched.
			if _, err := fsutil.MkdirAllInRoot(root, dest, createdDirMode(ms), owner); err != nil {
				return nil, fmt.Errorf("copy: creating %s: %w", dest, unwrapPath(err))
			}
		}
		return nil, nil
	}
	// Create the destination dir (dest/) or the parent of dest, owned by
	// the chown user as in BuildKit.
	mk := dest
	if !dirish {
		mk = path.Dir(dest)
	}
	if _, err := fsutil.MkdirAllInRoot(root, mk, createdDirMode(ms), owner); err != nil {
		return nil, fmt.Errorf("copy: creating %s: %w", mk, unwrapPath(err))
	}
	if destHost, err = fsutil.ResolveInRoot(root, dest); err != nil {
		return nil, fmt.Errorf("copy: dest %s: %w", dest, unwrapPath(err))
	}
	cp := &copier{
		ctx: ctx, s: s, root: root, excl: excl, owner: owner, mode: ms,
		inodes: map[inodeKey]string{}, isRoot: os.Geteuid() == 0,
		fc: fsutil.NewFileCopier(), reuse: reuse,
	}
	cp.reusable, cp.topCreated, cp.topTarget = reusable, absent, destHost
	if reuse != nil {
		cp.visited = map[string]bool{}
	}
	for _, src := range srcs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if c.AttemptUnpack && src.fi.Mode().IsRegular() {
			ok, err := unpackArchive(ctx, s.hostPath(src.rel), root, dest, owner)
			if err != nil {
				return nil, fmt.Errorf("copy: unpacking %s: %w", src.spec, err)
			}
			if ok {
				cp.topCreated = false
				continue
			}
		}
		if err := cp.copyTop(src, destHost, c); err != nil {
			return nil, fmt.Errorf("copy %s to %s: %w", src.spec, dest, err)
		}
	}
	return cp, nil
}

// copyTop copies one source with a pool of file workers, then sets the
// metadata of the directories it made.
func (cp *copier) copyTop(src copySource, destHost string, c *llb.Copy) error {
	// The workers run on other threads than this one, whose mount
	// namespace alone may show the trees: they work relative to
	// descriptors of the two roots.
	dst, err := unix.Open(cp.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the destination: %w", err)
	}
	defer unix.Close(dst)
	srcDir := -1
	if cp.s.root != "" {
		if srcDir, err = unix.Open(cp.s.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("opening the source: %w", err)
		}
		defer unix.Close(srcDir)
	}
	cp.dstDir, cp.srcDir = dst, srcDir
	cp.files = newFilePool(cp.ctx, cp.copyFileJob)
	cp.dirMeta = cp.dirMeta[:0]
	err = cp.copySource(src, destHost, c)
	if werr := cp.files.wait(); err == nil {
		err = werr
	}
	if err == nil && cp.reuse != nil {
		err = cp.pruneUnvisited(cp.topTarget)
	}
	if err != nil {
		return err
	}
	for _, j := range cp.dirMeta {
		if err := cp.meta(j.fi, j.host, j.target); err != nil {
			return err
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
		return cp.copy(cp.s.hostPath(src.rel), src.rel, "", filepath.Join(target, dirs[len(dirs)-1]), src.fi, false)
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
	return cp.copy(cp.s.hostPath(src.rel), src.rel, "", target, src.fi, false)
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
// the copied source, with lstat fi) to target. overwrite says whether an
// existing dir at target takes the metadata of the source dir (true below
// the top). Regular files are handed to the file pool, except hard-linked
// ones, whose first copy later links must find.
func (cp *copier) copy(host, rel, comp, target string, fi os.FileInfo, overwrite bool) error {
	if err := cp.ctx.Err(); err != nil {
		return err
	}
	if err := cp.files.err(); err != nil {
		return err
	}
	if cp.reuse != nil {
		cp.visited[target] = true
	}
	switch m := fi.Mode(); {
	case m.IsDir():
		created, err := cp.mkdirOnly(target, fi, overwrite)
		if err != nil {
			return err
		}
		err = keptChildren(cp.s, cp.excl, host, rel, comp, func(chost, crel, ccomp string, cfi os.FileInfo) error {
			return cp.copy(chost, crel, ccomp, filepath.Join(target, path.Base(crel)), cfi, true)
		})
		if err != nil {
			return err
		}
		if created || overwrite {
			cp.dirMeta = append(cp.dirMeta, metaJob{fi: fi, host: host, target: target})
		}
		return nil
	case m.IsRegular():
		j := fileJob{host: host, rel: rel, target: target, fi: fi}
		if cp.reuse != nil {
			if kept, err := cp.keepClone(j); kept || err != nil {
				return err
			}
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		if st == nil || st.Nlink <= 1 {
			cp.files.add(j)
			return nil
		}
		k := inodeKey{uint64(st.Dev), st.Ino}
		if prev, ok := cp.inodes[k]; ok {
			if err := cp.clearTarget(target); err != nil {
				return err
			}
			if err := os.Link(prev, target); err != nil {
				return fmt.Errorf("hard link %s: %w", cp.destName(target), unwrapPath(err))
			}
			break
		}
		cp.inodes[k] = target
		return cp.copyFileJob(j)
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
	return cp.meta(fi, host, target)
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
		if cp.reuse != nil {
			// A directory of the clone the source made a file.
			return os.RemoveAll(target)
		}
		return fmt.Errorf("cannot replace directory %s with a file", cp.destName(target))
	}
	return os.Remove(target)
}

// clearTargetAt is clearTarget for dst relative to the destination root
// descriptor (from a worker thread).
func (cp *copier) clearTargetAt(dst string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(cp.dstDir, dst, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat %s: %w", "/"+filepath.ToSlash(dst), err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("cannot replace directory %s with a file", "/"+filepath.ToSlash(dst))
	}
	if err := unix.Unlinkat(cp.dstDir, dst, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("removing %s: %w", "/"+filepath.ToSlash(dst), err)
	}
	return nil
}

// mkdirOnly makes the directory target unless it exists; an existing
// non-directory (a symlink included) is an error.
func (cp *copier) mkdirOnly(target string, fi os.FileInfo, overwrite bool) (bool, error) {
	st, err := os.Lstat(target)
	if err == nil && !st.IsDir() && cp.reuse != nil {
		// A file of the clone the source made a directory.
		if err := os.Remove(target); err != nil {
			return false, unwrapPath(err)
		}
		st, err = os.Lstat(target)
	}
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

// copyFileJob copies one regular file with its metadata; an existing
// non-directory at the target is replaced.
func (cp *copier) copyFileJob(j fileJob) error {
	m := cp.fileMeta(j.fi)
	dst, err := filepath.Rel(cp.root, j.target)
	if err != nil {
		return err
	}
	src := filepath.FromSlash(j.rel)
	if src == "" {
		src = "."
	}
	err = cp.fc.CopyFile(cp.dstDir, dst, cp.srcDir, src, j.fi.Size(), m)
	if errors.Is(err, os.ErrExist) {
		if err := cp.clearTargetAt(dst); err != nil {
			return err
		}
		err = cp.fc.CopyFile(cp.dstDir, dst, cp.srcDir, src, j.fi.Size(), m)
	}
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			switch pe.Path {
			case src:
				return fmt.Errorf("copying %s: %s: %w", "/"+j.rel, pe.Op, pe.Err)
			case dst, "":
				return fmt.Errorf("copying %s to %s: %s: %w", "/"+j.rel, cp.destName(j.target), pe.Op, pe.Err)
			}
		}
		return fmt.Errorf("copying %s to %s: %w", "/"+j.rel, cp.destName(j.target), err)
	}
	return nil
}

// fileMeta is the metadata the copy of the regular file fi gets.
func (cp *copier) fileMeta(fi os.FileInfo) fsutil.FileMeta {
	uid, gid := cp.ownerOf(fi)
	atime, mtime := fsutil.StatTimes(fi)
	mode := fsutil.UnixMode(fi.Mode())
	if cp.mode != nil {
		mode = cp.mode.apply(mode, false)
	}
	return fsutil.FileMeta{
		Chown: cp.isRoot || cp.owner != nil, UID: uid, GID: gid,
		Mode: mode, Atime: atime, Mtime: mtime, Xattrs: true,
	}
}

// keepClone keeps the cloned file at j's target when it already is the
// copy of j's source (Reuse.keep); a cloned directory there is removed.
func (cp *copier) keepClone(j fileJob) (bool, error) {
	dst, err := filepath.Rel(cp.root, j.target)
	if err != nil {
		return false, err
	}
	st, _ := j.fi.Sys().(*syscall.Stat_t)
	if st != nil && st.Nlink == 1 && cp.reuse.keep(j.target, dst, j.fi, cp.fileMeta(j.fi)) {
		return true, nil
	}
	if fi, err := os.Lstat(j.target); err == nil && fi.IsDir() {
		if err := os.RemoveAll(j.target); err != nil {
			return false, fmt.Errorf("removing %s: %w", cp.destName(j.target), unwrapPath(err))
		}
	}
	return false, nil
}

// ownerOf is the owner a copy of the entry fi gets: the chown user, 0:0
// from a local context, else the source's.
func (cp *copier) ownerOf(fi os.FileInfo) (uid, gid int) {
	switch {
	case cp.owner != nil:
		return cp.owner.UID, cp.owner.GID
	case cp.s.local:
		return 0, 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}

// meta copies owner, mode, xattrs and times of the source entry to target.
func (cp *copier) meta(fi os.FileInfo, host, target string) error {
	uid, gid := cp.ownerOf(fi)
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
