package fsutil

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FileCopier copies regular files with as few system calls per file as the
// kernel allows: one open of the source and one of the target (created
// with O_EXCL, never following a symlink), the data moved by a reflink
// (FICLONE), copy_file_range or large read/write calls, and the owner,
// mode, xattrs and times set on the open target. A method the kernel
// refuses for a pair of filesystems (a reflink on ext4, copy_file_range
// from ext4 into overlayfs, which fails with EXDEV since Linux 5.19) is
// tried once per FileCopier and then skipped, and so are xattr calls on a
// source filesystem without xattr support.
//
// A FileCopier is safe for concurrent use; one per copy operation.
type FileCopier struct {
	noClone   atomic.Bool
	noRange   atomic.Bool
	noXattrs  atomic.Bool
	bufs      sync.Pool
	umask     uint32
	umaskKnwn bool
}

// FileMeta is the metadata a copied file gets.
type FileMeta struct {
	// Chown sets UID:GID (else the file keeps the creator's owner).
	Chown    bool
	UID, GID int
	// Mode is the unix mode (07777 bits).
	Mode uint32
	// Atime and Mtime are the times to set.
	Atime, Mtime time.Time
	// Xattrs copies the source's extended attributes (best effort).
	Xattrs bool
}

// copyBufSize is the read/write chunk when the kernel cannot copy: large
// enough that a typical source file takes one read and one write.
const copyBufSize = 1 << 20

// NewFileCopier returns a FileCopier.
func NewFileCopier() *FileCopier {
	c := &FileCopier{}
	c.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	c.umask, c.umaskKnwn = processUmask()
	return c
}

var (
	umaskOnce  sync.Once
	umaskVal   uint32
	umaskKnown bool
)

// processUmask reads the umask from /proc/self/status (Linux 4.7+) without
// changing it (umask(2) cannot be read without being set, and setting it
// would race with other goroutines creating files).
func processUmask() (uint32, bool) {
	umaskOnce.Do(func() {
		f, err := os.Open("/proc/self/status")
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("Umask:")); ok {
				u, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 8, 32)
				if err == nil {
					umaskVal, umaskKnown = uint32(u), true
				}
				return
			}
		}
	})
	return umaskVal, umaskKnown
}

// CopyFile creates dst (relative to the directory dstDir; it must not
// exist and is never followed) as a copy of the regular file src (relative
// to srcDir, never followed) of size bytes (its lstat size: a file that
// shrank or grew meanwhile is copied to its end), with metadata m. The
// directory descriptors make the copy work from any thread, also on mounts
// that only one thread's mount namespace shows. An error is an
// *os.PathError naming the failing call and path (src or dst as given); an
// existing dst gives one wrapping os.ErrExist before anything is read.
func (c *FileCopier) CopyFile(dstDir int, dst string, srcDir int, src string, size int64, m FileMeta) error {
	in, err := openRetry(srcDir, src, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: src, Err: err}
	}
	defer unix.Close(in)
	perm := m.Mode & 0o777
	out, err := openRetry(dstDir, dst, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return &os.PathError{Op: "open", Path: dst, Err: err}
	}
	err = c.copyData(out, in, size)
	if err == nil {
		err = c.setMeta(out, in, dst, perm, m)
	}
	if cerr := unix.Close(out); err == nil && cerr != nil {
		err = &os.PathError{Op: "close", Path: dst, Err: cerr}
	}
	return err
}

func openRetry(dir int, p string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dir, p, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// unsupported reports whether err means the kernel or filesystem cannot do
// a copy method at all (rather than a failure of this one file).
func unsupported(err error) bool {
	switch err {
	case unix.EXDEV, unix.ENOSYS, unix.EOPNOTSUPP, unix.EINVAL, unix.ENOTTY, unix.EPERM, unix.EBADF:
		return true
	}
	return false
}

func (c *FileCopier) copyData(out, in int, size int64) error {
	if size <= 0 {
		return c.readWrite(out, in, size)
	}
	if !c.noClone.Load() {
		err := unix.IoctlFileClone(out, in)
		if err == nil {
			return nil
		}
		if unsupported(err) {
			c.noClone.Store(true)
		}
	}
	if !c.noRange.Load() {
		var done int64
		for {
			n, err := unix.CopyFileRange(in, nil, out, nil, 1<<30, 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				if done == 0 && unsupported(err) {
					c.noRange.Store(true)
					break
				}
				return &os.PathError{Op: "copy_file_range", Path: "", Err: err}
			}
			if n == 0 {
				return nil
			}
			done += int64(n)
		}
	}
	return c.readWrite(out, in, size)
}

// readWrite copies the rest of in to out through a large buffer. A short
// read that reaches the stat size is taken as the end of the file, saving
// the read that would return 0.
func (c *FileCopier) readWrite(out, in int, size int64) error {
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := unix.Read(in, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "read", Err: err}
		}
		if n == 0 {
			return nil
		}
		for w := buf[:n]; len(w) > 0; {
			m, err := unix.Write(out, w)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return &os.PathError{Op: "write", Err: err}
			}
			w = w[m:]
		}
		total += int64(n)
		if n < len(buf) && total >= size {
			return nil
		}
	}
}

// setMeta sets owner, mode, xattrs and times on the open target out, in
// that order (chown clears set-id bits and file capabilities), skipping
// the chmod when the create mode already gave the file its mode.
func (c *FileCopier) setMeta(out, in int, dst string, created uint32, m FileMeta) error {
	if m.Chown {
		if err := unix.Fchown(out, m.UID, m.GID); err != nil {
			return &os.PathError{Op: "chown", Path: dst, Err: err}
		}
	}
	if !c.umaskKnwn || m.Mode != created&^c.umask {
		if err := unix.Fchmod(out, m.Mode); err != nil {
			return &os.PathError{Op: "chmod", Path: dst, Err: err}
		}
	}
	if m.Xattrs {
		c.copyXattrs(out, in)
	}
	ts := [2]unix.Timespec{unix.NsecToTimespec(m.Atime.UnixNano()), unix.NsecToTimespec(m.Mtime.UnixNano())}
	if err := futimens(out, &ts); err != nil {
		return &os.PathError{Op: "utimes", Path: dst, Err: err}
	}
	return nil
}

// futimens is utimensat(fd, NULL, ts, 0).
func futimens(fd int, ts *[2]unix.Timespec) error {
	for {
		_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// copyXattrs copies the xattrs of in to out, best effort as in docker
// build; a source filesystem without xattr support is not asked again.
func (c *FileCopier) copyXattrs(out, in int) {
	if c.noXattrs.Load() {
		return
	}
	var small [256]byte
	buf := small[:]
	n, err := unix.Flistxattr(in, buf)
	if errors.Is(err, unix.ERANGE) {
		if sz, err2 := unix.Flistxattr(in, nil); err2 == nil {
			buf = make([]byte, sz)
			n, err = unix.Flistxattr(in, buf)
		}
	}
	if errors.Is(err, unix.ENOTSUP) {
		c.noXattrs.Store(true)
		return
	}
	if err != nil || n == 0 {
		return
	}
	for _, name := range bytes.Split(buf[:n], []byte{0}) {
		if len(name) == 0 {
			continue
		}
		v, err := fgetxattr(in, string(name))
		if err != nil {
			continue
		}
		_ = unix.Fsetxattr(out, string(name), v, 0)
	}
}

func fgetxattr(fd int, name string) ([]byte, error) {
	return readXattr(func(buf []byte) (int, error) { return unix.Fgetxattr(fd, name, buf) })
}
