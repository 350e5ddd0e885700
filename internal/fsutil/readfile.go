package fsutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrTooLarge is returned by ReadFileInRoot for a file over its size cap.
var ErrTooLarge = errors.New("file too large")

// ReadFileInRoot reads the regular file name inside root, resolving every
// symlink on the way inside root (an absolute symlink to /etc/shadow names
// ROOT/etc/shadow), and refuses anything but a regular file (a device
// such as /dev/zero, a FIFO, a directory) and any file over max bytes. The
// read stops when ctx is done. Errors are *os.PathError naming
// ROOT/NAME. A missing file is an error satisfying
// errors.Is(err, os.ErrNotExist).
func ReadFileInRoot(ctx context.Context, root, name string, max int64) ([]byte, error) {
	f, err := OpenInRoot(root, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &os.PathError{Op: "read", Path: f.Name(), Err: fmt.Errorf("not a regular file but %s", fileKind(fi.Mode()))}
	}
	if fi.Size() > max {
		return nil, &os.PathError{Op: "read", Path: f.Name(), Err: fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, fi.Size(), max)}
	}
	buf := make([]byte, 0, fi.Size())
	chunk := make([]byte, 64<<10)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := f.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if int64(len(buf)) > max {
			// It grew while we read it.
			return nil, &os.PathError{Op: "read", Path: f.Name(), Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)}
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: f.Name(), Err: err}
		}
	}
}

// OpenInRoot opens name for reading inside root without ever leaving
// it: openat2 with RESOLVE_IN_ROOT where the kernel has it (5.6+), else
// ResolveInRoot and an O_NOFOLLOW open of the result. It opens without
// blocking, so a FIFO does not hang it.
func OpenInRoot(root, name string) (*os.File, error) {
	dir, err := os.Open(root)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	rel := filepath.Clean("/" + name)[1:]
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 16 {
		fd, err := unix.Openat2(int(dir.Fd()), rel, &how)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), filepath.Join(root, rel)), nil
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			// A concurrent rename under root; the kernel asks to retry.
			continue
		case errors.Is(err, unix.ENOSYS):
			p, err := ResolveInRoot(root, rel)
			if err != nil {
				return nil, err
			}
			return os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
		default:
			return nil, &os.PathError{Op: "open", Path: filepath.Join(root, rel), Err: err}
		}
	}
	return nil, &os.PathError{Op: "open", Path: filepath.Join(root, rel), Err: unix.EAGAIN}
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	}
	return m.Type().String()
}
