package fsutil

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestMarkTopDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS); err != nil {
		t.Skipf("the filesystem of %s has no inode flags: %v", dir, err)
	}
	MarkTopDir(dir)
	MarkTopDir(dir) // set already: no change, no error
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Fatal(err)
	}
	if flags&fsTopdirFl == 0 {
		t.Skipf("the filesystem of %s does not keep the top-directory flag (flags %#x)", dir, flags)
	}
	MarkTopDir(dir + "/missing") // ignored
}
