package fsutil

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func dirFd(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestFileCopierCopiesDataAndMetadata covers sizes around the buffer, the
// set-id bits (which need the chmod the create mode cannot do), times,
// xattrs and the existing-target error, twice in a row so the second file
// runs after any copy method was found unsupported.
func TestFileCopierCopiesDataAndMetadata(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	sfd, dfd := dirFd(t, src), dirFd(t, dst)
	fc := NewFileCopier()
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
	atime := time.Date(2002, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, size := range []int{0, 1, copyBufSize - 1, copyBufSize, copyBufSize + 1, 3*copyBufSize + 17} {
		for _, mode := range []uint32{0o644, 0o4755, 0o600} {
			name := filepath.Join("f", string(rune('a'+i)))
			data := bytes.Repeat([]byte{byte(i), byte(mode)}, size/2+1)[:size]
			if err := os.MkdirAll(filepath.Join(src, "f"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(dst, "f"), 0o755); err != nil {
				t.Fatal(err)
			}
			sp := filepath.Join(src, name)
			if err := os.WriteFile(sp, data, 0o644); err != nil {
				t.Fatal(err)
			}
			xattr := unix.Lsetxattr(sp, "user.k", []byte("v"), 0) == nil
			m := FileMeta{Mode: mode, Atime: atime, Mtime: mtime, Xattrs: true}
			if os.Geteuid() == 0 {
				m.Chown, m.UID, m.GID = true, 12, 34
			}
			os.Remove(filepath.Join(dst, name))
			if err := fc.CopyFile(dfd, name, sfd, name, int64(size), m); err != nil {
				t.Fatalf("size %d mode %o: %v", size, mode, err)
			}
			var st unix.Stat_t // before reading: a read may move the atime
			if err := unix.Lstat(filepath.Join(dst, name), &st); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dst, name))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("size %d: data differs (%v)", size, err)
			}
			if st.Mode&0o7777 != mode {
				t.Errorf("size %d: mode %o, want %o", size, st.Mode&0o7777, mode)
			}
			if st.Mtim.Nano() != mtime.UnixNano() || st.Atim.Nano() != atime.UnixNano() {
				t.Errorf("size %d: times %v %v", size, st.Mtim, st.Atim)
			}
			if m.Chown && (st.Uid != 12 || st.Gid != 34) {
				t.Errorf("size %d: owner %d:%d", size, st.Uid, st.Gid)
			}
			if xattr {
				if v, err := GetXattr(filepath.Join(dst, name), "user.k"); err != nil || string(v) != "v" {
					t.Errorf("size %d: xattr %q %v", size, v, err)
				}
			}
			err = fc.CopyFile(dfd, name, sfd, name, int64(size), m)
			if !errors.Is(err, os.ErrExist) {
				t.Errorf("copy onto an existing file: %v, want ErrExist", err)
			}
		}
	}
}

// TestFileCopierNeverFollowsTarget: a symlink at the target is not
// followed (O_EXCL|O_NOFOLLOW), whatever it points to.
func TestFileCopierNeverFollowsTarget(t *testing.T) {
	t.Parallel()
	src, dst, outside := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "victim"), filepath.Join(dst, "f")); err != nil {
		t.Fatal(err)
	}
	err := NewFileCopier().CopyFile(dirFd(t, dst), "f", dirFd(t, src), "f", 1, FileMeta{Mode: 0o644})
	if !errors.Is(err, os.ErrExist) {
		t.Errorf("got %v, want ErrExist", err)
	}
	if _, err := os.Lstat(filepath.Join(outside, "victim")); !errors.Is(err, os.ErrNotExist) {
		t.Error("the copy followed the target symlink")
	}
}
