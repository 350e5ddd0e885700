package fileop

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/builderdev/builder/llb"
	"golang.org/x/sys/unix"
)

// inPrivateMounts runs fn on a thread of its own mount namespace, with a
// tmpfs mounted on each of dirs there only, as snapshot.WithMounts does:
// other threads see the empty directories.
func inPrivateMounts(t *testing.T, dirs []string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with its namespace
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			done <- err
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			done <- err
			return
		}
		for _, d := range dirs {
			if err := unix.Mount("tmpfs", d, "tmpfs", 0, ""); err != nil {
				done <- err
				return
			}
		}
		done <- fn()
	}()
	return <-done
}

// TestCopyAndChecksumInMountNamespace: copies and checksums of trees that
// only the calling thread's mount namespace shows work, although files are
// copied on other goroutines (threads), through directory descriptors.
func TestCopyAndChecksumInMountNamespace(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
	must(t, os.Mkdir(src, 0o755))
	must(t, os.Mkdir(dst, 0o755))
	c := dockerCopy("/out/", ".")
	var inside, outside []string
	err := inPrivateMounts(t, []string{src, dst}, func() error {
		var names []string
		for i := 0; i < 200; i++ {
			names = append(names, filepath.Join("d", string(rune('a'+i%26)), "f"+string(rune('a'+i/26))+"=x"))
		}
		mkTree(t, src, names...)
		// A stage's tree, as a RUN --mount=from key hashes it (a local
		// context is a host path, hashed in parallel).
		if _, err := Checksum(context.Background(), Input{Root: src}, &c, nil); err != nil {
			return err
		}
		if err := Apply(context.Background(), dst, []Input{{Root: src}}, llb.FileOp{Actions: []llb.FileAction{{Copy: &c}}}); err != nil {
			return err
		}
		inside = describe(t, filepath.Join(dst, "out"), false)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(inside) != 200+1+26 {
		t.Errorf("copied %d entries, want 227", len(inside))
	}
	outside = describe(t, dst, false)
	if len(outside) != 0 {
		t.Errorf("the copy wrote outside the mount namespace: %v", outside)
	}
}
