package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/builderdev/builder/internal/fsutil"
)

// fileMeta is the metadata that copies and extraction restore.
type fileMeta struct {
	uid, gid     int
	mode         uint32 // permission bits incl. setuid/setgid/sticky
	xattrs       map[string]string
	atime, mtime unix.Timespec
	symlink      bool
}

// setMeta restores m on p. Order matters: chown clears setuid bits and
// security.capability, so it comes first; times come last.
func setMeta(p string, m fileMeta) error {
	if err := unix.Lchown(p, m.uid, m.gid); err != nil {
		return fmt.Errorf("chown %s: %w", p, err)
	}
	if !m.symlink {
		if err := unix.Chmod(p, m.mode); err != nil {
			return fmt.Errorf("chmod %s: %w", p, err)
		}
	}
	for _, k := range sortedKeys(m.xattrs) {
		if err := unix.Lsetxattr(p, k, []byte(m.xattrs[k]), 0); err != nil {
			return fmt.Errorf("setting xattr %s on %s: %w", k, p, err)
		}
	}
	ts := []unix.Timespec{m.atime, m.mtime}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting times of %s: %w", p, err)
	}
	return nil
}

func metaFromStat(p string, st *unix.Stat_t) (fileMeta, error) {
	xs, err := readXattrs(p)
	if err != nil {
		return fileMeta{}, err
	}
	return fileMeta{
		uid: int(st.Uid), gid: int(st.Gid), mode: st.Mode & 0o7777, xattrs: xs,
		atime: st.Atim, mtime: st.Mtim, symlink: st.Mode&unix.S_IFMT == unix.S_IFLNK,
	}, nil
}

// copyTree copies the contents and metadata of directory src into the
// existing directory dst: modes, owners, times, xattrs, hard links,
// symlinks, device nodes and fifos.
func copyTree(ctx context.Context, src, dst string) error {
	c := &copier{ctx: ctx, links: map[devIno]string{}}
	return c.copyDir(src, dst)
}

type copier struct {
	ctx   context.Context
	links map[devIno]string
}

func (c *copier) copyDir(src, dst string) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return fmt.Errorf("lstat %s: %w", src, err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	for _, e := range ents {
		if err := c.copyEntry(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	// Directory metadata last: creating children changes the mtime.
	m, err := metaFromStat(src, &st)
	if err != nil {
		return err
	}
	return setMeta(dst, m)
}

func (c *copier) copyEntry(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return fmt.Errorf("lstat %s: %w", src, err)
	}
	typ := st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		k := devIno{uint64(st.Dev), st.Ino}
		if first, ok := c.links[k]; ok {
			if err := os.Link(first, dst); err != nil {
				return fmt.Errorf("copying hard link %s: %w", src, err)
			}
			return nil
		}
		c.links[k] = dst
	}
	switch typ {
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, 0o700); err != nil {
			return fmt.Errorf("copying %s: %w", src, err)
		}
		return c.copyDir(src, dst)
	case unix.S_IFREG:
		if err := fsutil.CopyFileData(dst, src); err != nil {
			return fmt.Errorf("copying %s to %s: %w", src, dst, err)
		}
	case unix.S_IFLNK:
		t, err := os.Readlink(src)
		if err != nil {
			return fmt.Errorf("copying %s: %w", src, err)
		}
		if err := os.Symlink(t, dst); err != nil {
			return fmt.Errorf("copying %s: %w", src, err)
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		if err := unix.Mknod(dst, typ|0o600, int(st.Rdev)); err != nil {
			return fmt.Errorf("copying %s: mknod: %w", src, err)
		}
	default:
		return fmt.Errorf("copying %s: unknown file type %o", src, typ)
	}
	m, err := metaFromStat(src, &st)
	if err != nil {
		return err
	}
	return setMeta(dst, m)
}
