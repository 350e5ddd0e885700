package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ReadDirLstat returns the entries of dir sorted by name with their lstat
// information, stat'ed relative to one descriptor of dir: a walk of 10,000
// files then resolves each name alone instead of its whole path (the path
// lookups were a tenth of a cached build's CPU). Entries removed meanwhile
// are left out. Each FileInfo's Sys() is a *syscall.Stat_t, as os.Lstat's.
func ReadDirLstat(dir string) ([]fs.FileInfo, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("reading directory %s: %w", dir, err)
	}
	sort.Strings(names)
	fd := int(f.Fd())
	out := make([]fs.FileInfo, 0, len(names))
	for _, n := range names {
		fi := &statInfo{name: n}
		for {
			// unix.Stat_t and syscall.Stat_t are the same kernel
			// struct (see the size check below).
			err = unix.Fstatat(fd, n, (*unix.Stat_t)(unsafe.Pointer(&fi.st)), unix.AT_SYMLINK_NOFOLLOW)
			if err != unix.EINTR {
				break
			}
		}
		if errors.Is(err, syscall.ENOENT) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "lstat", Path: dir + "/" + n, Err: err}
		}
		out = append(out, fi)
	}
	return out, nil
}

// The two Stat_t types must match for the conversion above.
var _ [unsafe.Sizeof(unix.Stat_t{}) - unsafe.Sizeof(syscall.Stat_t{})]struct{}
var _ [unsafe.Sizeof(syscall.Stat_t{}) - unsafe.Sizeof(unix.Stat_t{})]struct{}

// statInfo is an fs.FileInfo of a syscall.Stat_t, as os.Lstat builds it.
type statInfo struct {
	name string
	st   syscall.Stat_t
}

func (fi *statInfo) Name() string       { return fi.name }
func (fi *statInfo) Size() int64        { return fi.st.Size }
func (fi *statInfo) IsDir() bool        { return fi.Mode().IsDir() }
func (fi *statInfo) Sys() any           { return &fi.st }
func (fi *statInfo) ModTime() time.Time { return time.Unix(fi.st.Mtim.Unix()) }

func (fi *statInfo) Mode() fs.FileMode {
	m := fs.FileMode(fi.st.Mode & 0o777)
	switch fi.st.Mode & syscall.S_IFMT {
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if fi.st.Mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if fi.st.Mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if fi.st.Mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
