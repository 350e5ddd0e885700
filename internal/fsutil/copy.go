package fsutil

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// CopyFileData creates dst (which must not exist, and is never followed if
// it is a symlink) with mode 0600 and copies the contents of the regular
// file src into it. Errors are the *os.PathError of the failing call. On Linux io.Copy between files uses copy_file_range, so
// data is not buffered in user space when the kernel can avoid it.
func CopyFileData(dst, src string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return nil
}

// Lutimes sets the access and modification times of p without following a
// symlink.
func Lutimes(p string, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: p, Err: err}
	}
	return nil
}

// StatTimes returns the access and modification times of fi (from its
// syscall.Stat_t).
func StatTimes(fi os.FileInfo) (atime, mtime time.Time) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix())
	}
	return fi.ModTime(), fi.ModTime()
}

// CopyXattrs copies the extended attributes of src to dst, neither
// followed. Attributes that cannot be read or set (unsupported by the
// filesystem, or not permitted) are skipped: they are best effort, as in
// docker build.
func CopyXattrs(dst, src string) error {
	names, err := ListXattrs(src)
	if err != nil {
		return nil
	}
	for _, name := range names {
		val, err := GetXattr(src, name)
		if err != nil {
			continue
		}
		_ = unix.Lsetxattr(dst, name, val, 0)
	}
	return nil
}

// ListXattrs returns the names of the extended attributes of p (not
// followed); none where the filesystem does not support them.
func ListXattrs(p string) ([]string, error) {
	size := 256
	for {
		buf := make([]byte, size)
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			size *= 4
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("listing xattrs of %s: %w", p, err)
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}

// GetXattr returns the value of the extended attribute name of p (not
// followed). The error is the bare errno (unix.ENODATA when p has no such
// attribute).
func GetXattr(p, name string) ([]byte, error) {
	return readXattr(func(buf []byte) (int, error) { return unix.Lgetxattr(p, name, buf) })
}

// readXattr calls get with a buffer that grows until the value fits.
func readXattr(get func(buf []byte) (int, error)) ([]byte, error) {
	size := 256
	for {
		buf := make([]byte, size)
		n, err := get(buf)
		if errors.Is(err, unix.ERANGE) {
			size *= 4
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// Xattrs returns the extended attributes of p (not followed), best effort.
func Xattrs(p string) map[string][]byte {
	names, _ := ListXattrs(p)
	if len(names) == 0 {
		return nil
	}
	m := make(map[string][]byte, len(names))
	for _, n := range names {
		if v, err := GetXattr(p, n); err == nil {
			m[n] = v
		}
	}
	return m
}

// UnixMode converts a Go file mode to the permission and special bits of a
// unix mode (07777).
func UnixMode(m os.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		u |= unix.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		u |= unix.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		u |= unix.S_ISVTX
	}
	return u
}

// GoMode converts unix permission and special bits (07777) to a Go mode.
func GoMode(u uint32) os.FileMode {
	m := os.FileMode(u & 0o777)
	if u&unix.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if u&unix.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if u&unix.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}

// Owner is a numeric uid and gid.
type Owner struct {
	UID, GID int
}

// MkdirAllInRoot creates the directory unsafePath inside root and its
// missing parents, resolving every existing component inside root as
// ResolveInRoot does, so neither ".." nor a symlink can make it create
// anything outside root. Created directories get mode (exactly, regardless
// of the umask) and, when owner is not nil, that owner. An existing
// component that is not a directory (after symlink resolution) is an error.
// It returns the host path of the directory. A dangling symlink on the way
// gets its target created, parents included (as BuildKit's copy does for
// COPY foo /symlink/).
func MkdirAllInRoot(root, unsafePath string, mode os.FileMode, owner *Owner) (string, error) {
	return mkdirAllInRoot(root, unsafePath, mode, owner, 0)
}

// maxLinkDepth bounds the dangling symlinks mkdirAllInRoot follows.
const maxLinkDepth = 40

func mkdirAllInRoot(root, unsafePath string, mode os.FileMode, owner *Owner, depth int) (string, error) {
	comps := strings.Split(filepath.ToSlash(filepath.Clean("/"+unsafePath)), "/")
	cur := "/"
	host := filepath.Clean(root)
	for _, c := range comps {
		if c == "" {
			continue
		}
		cur = filepath.Join(cur, c)
		p, err := ResolveInRoot(root, cur)
		if err != nil {
			return "", err
		}
		fi, err := os.Lstat(p)
		switch {
		case err == nil:
			if !fi.IsDir() {
				return "", &os.PathError{Op: "mkdir", Path: cur, Err: syscall.ENOTDIR}
			}
		case errors.Is(err, os.ErrNotExist):
			err := os.Mkdir(p, mode.Perm())
			if errors.Is(err, os.ErrNotExist) && depth < maxLinkDepth {
				// cur resolved through a dangling symlink to a path
				// whose parent is missing: create that parent in root.
				rel, rerr := filepath.Rel(filepath.Clean(root), filepath.Dir(p))
				if rerr != nil || !filepath.IsLocal(rel) && rel != "." {
					return "", err
				}
				if _, err := mkdirAllInRoot(root, "/"+rel, mode, owner, depth+1); err != nil {
					return "", err
				}
				err = os.Mkdir(p, mode.Perm())
			}
			if err != nil {
				return "", err
			}
			if err := os.Chmod(p, mode); err != nil {
				return "", err
			}
			if owner != nil {
				if err := os.Lchown(p, owner.UID, owner.GID); err != nil {
					return "", err
				}
			}
		default:
			return "", err
		}
		host = p
	}
	return host, nil
}
