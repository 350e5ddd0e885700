package fileop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/builderdev/builder/internal/fsutil"
	"golang.org/x/sys/unix"
)

// Reuse lets a copy start from a previous result of the same copy onto the
// same parent tree: CloneTree hard-links the previous result's files into
// the new, still unmounted, tree (the previous tree is immutable, and so is
// a hard-linked file, since nothing writes to a committed snapshot and an
// overlay copies a lower file up before writing it). The copy then keeps a
// cloned file whose source provably did not change since the previous copy
// read it, copies the others, and removes what the source no longer has,
// so the result is the tree a fresh copy makes.
//
// A source file is unchanged when its ctime (which no user can set, and
// which every content, mode, owner or xattr change moves) is older, by
// racyWindow, than the previous copy of it (the ctime the cloned file had
// before it was linked), and the cloned file has the mode, owner, size and
// mtime the copy would give it. Its atime is the source's at the previous
// copy, not now: reading a file moves its atime, layers do not carry it,
// and setting it would change the previous result's inode too.
type Reuse struct {
	// copiedAt is the ctime (ns) each regular file of the previous result
	// had, by its path relative to the tree root.
	copiedAt map[string]int64
}

// racyWindow is how much older than the previous copy a source must be to
// be trusted unchanged (file timestamps come from a coarse clock).
var racyWindow = 2 * time.Second

// maxReuseEntries bounds the memory of a Reuse; a larger previous result
// is copied afresh.
const maxReuseEntries = 500_000

// errTooLarge stops a clone of a tree with too many entries.
var errTooLarge = errors.New("previous result too large to reuse")

// CloneTree makes dst, an empty directory, a copy of the tree src in which
// every regular file is a hard link to src's, and returns what the copy
// needs to know about them. On error dst may be partly filled: the caller
// empties it (ClearTree) and copies afresh.
func CloneTree(ctx context.Context, src, dst string) (*Reuse, error) {
	r := &Reuse{copiedAt: map[string]int64{}}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return nil, fmt.Errorf("cloning %s: %w", src, err)
	}
	if err := r.cloneDir(ctx, src, dst, ""); err != nil {
		return nil, err
	}
	if err := cloneMeta(src, dst, &st); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Reuse) cloneDir(ctx context.Context, src, dst, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	names, err := fsutil.ReadDirNames(src)
	if err != nil {
		return fmt.Errorf("cloning %s: %w", src, err)
	}
	for _, n := range names {
		if len(r.copiedAt) >= maxReuseEntries {
			return errTooLarge
		}
		s, d, crel := filepath.Join(src, n), filepath.Join(dst, n), filepath.Join(rel, n)
		var st unix.Stat_t
		if err := unix.Lstat(s, &st); err != nil {
			return fmt.Errorf("cloning %s: %w", s, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := unix.Mkdir(d, 0o700); err != nil {
				return fmt.Errorf("cloning %s: %w", s, err)
			}
			if err := r.cloneDir(ctx, s, d, crel); err != nil {
				return err
			}
		case unix.S_IFREG:
			// Before the link: linking changes the ctime.
			r.copiedAt[crel] = st.Ctim.Nano()
			if err := unix.Link(s, d); err != nil {
				return fmt.Errorf("cloning %s: %w", s, err)
			}
			continue
		case unix.S_IFLNK:
			t, err := os.Readlink(s)
			if err != nil {
				return fmt.Errorf("cloning %s: %w", s, err)
			}
			if err := unix.Symlink(t, d); err != nil {
				return fmt.Errorf("cloning %s: %w", s, err)
			}
		default: // devices, fifos, overlay whiteouts (0/0 char devices)
			if err := unix.Mknod(d, st.Mode, int(st.Rdev)); err != nil {
				return fmt.Errorf("cloning %s: %w", s, err)
			}
		}
		if err := cloneMeta(s, d, &st); err != nil {
			return err
		}
	}
	return nil
}

// cloneMeta gives dst the owner, mode, xattrs (overlay's own included:
// an opaque directory stays opaque) and times of src.
func cloneMeta(src, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("cloning %s: %w", src, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return fmt.Errorf("cloning %s: %w", src, err)
		}
	}
	for name, v := range fsutil.Xattrs(src) {
		if err := unix.Lsetxattr(dst, name, v, 0); err != nil {
			return fmt.Errorf("cloning xattr %s of %s: %w", name, src, err)
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("cloning %s: %w", src, err)
	}
	return nil
}

// ClearTree removes everything inside dir (after a failed clone).
func ClearTree(dir string) error {
	names, err := fsutil.ReadDirNames(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
			return err
		}
	}
	return nil
}

// keep reports whether the cloned regular file at target (host path; dst
// relative to the destination root) already is the copy of source fi with
// metadata m.
func (r *Reuse) keep(target, dst string, fi os.FileInfo, m fsutil.FileMeta) bool {
	at, ok := r.copiedAt[dst]
	if !ok || !m.Chown {
		return false
	}
	sst, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || sst.Ctim.Nano() >= at-int64(racyWindow) {
		return false
	}
	var st unix.Stat_t
	if err := unix.Lstat(target, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o7777 == m.Mode &&
		int(st.Uid) == m.UID && int(st.Gid) == m.GID && st.Size == fi.Size() &&
		st.Mtim.Nano() == m.Mtime.UnixNano()
}

// pruneUnvisited removes the entries below the directory target that the
// copy neither wrote nor kept: what the source no longer has. They all
// come from the clone (the parent tree has nothing at a target the copy
// created), so removing them leaves no whiteout.
func (cp *copier) pruneUnvisited(target string) error {
	fi, err := os.Lstat(target)
	if err != nil || !fi.IsDir() {
		return nil
	}
	names, err := fsutil.ReadDirNames(target)
	if err != nil {
		return err
	}
	for _, n := range names {
		p := filepath.Join(target, n)
		if !cp.visited[p] {
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("removing %s: %w", cp.destName(p), unwrapPath(err))
			}
			continue
		}
		if err := cp.pruneUnvisited(p); err != nil {
			return err
		}
	}
	return nil
}

// SetRacyWindow sets how much older than a previous copy a source must be
// to be reused unchanged, and returns the old value (for tests).
func SetRacyWindow(d time.Duration) time.Duration {
	old := racyWindow
	racyWindow = d
	return old
}
