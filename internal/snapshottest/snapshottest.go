package snapshottest

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builderdev/builder/snapshot"
	"golang.org/x/sys/unix"
)

// Run runs the conformance suite against the snapshotter newSnapshotter
// opens under root (called again with the same root to test persistence).
// It needs root and is skipped in -short mode.
func Run(t *testing.T, newSnapshotter func(t *testing.T, root string) snapshot.Snapshotter) {
	if testing.Short() {
		t.Skip("snapshotter conformance tests mount filesystems; skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("snapshotter conformance tests need root")
	}
	open := func(t *testing.T) (snapshot.Snapshotter, string) {
		root := filepath.Join(t.TempDir(), "root")
		sn := newSnapshotter(t, root)
		t.Cleanup(func() { sn.Close() })
		return sn, root
	}
	t.Run("Lifecycle", func(t *testing.T) { sn, _ := open(t); testLifecycle(t, sn) })
	t.Run("Errors", func(t *testing.T) { sn, _ := open(t); testErrors(t, sn) })
	t.Run("Persistence", func(t *testing.T) { testPersistence(t, newSnapshotter) })
	t.Run("Diff", func(t *testing.T) { testDiff(t, open) })
	t.Run("ApplyDiffRoundTrip", func(t *testing.T) { sn, _ := open(t); testApplyRoundTrip(t, sn) })
	t.Run("ApplyWhiteouts", func(t *testing.T) { sn, _ := open(t); testApplyWhiteouts(t, sn) })
	t.Run("WhiteoutSymlinks", func(t *testing.T) { sn, _ := open(t); testWhiteoutSymlinks(t, sn) })
	t.Run("HostileLayers", func(t *testing.T) { testHostile(t, newSnapshotter) })
	t.Run("DeepChain", func(t *testing.T) { sn, _ := open(t); testDeepChain(t, sn, 100) })
	t.Run("Concurrent", func(t *testing.T) { sn, _ := open(t); testConcurrent(t, sn) })
}

func testLifecycle(t *testing.T, sn snapshot.Snapshotter) {
	ctx := context.Background()
	commitWith(t, sn, "base", "", func(r string) error { return writeFile(filepath.Join(r, "a"), "A", 0o644) })
	commitWith(t, sn, "child", "base", func(r string) error {
		b, err := os.ReadFile(filepath.Join(r, "a"))
		if err != nil || string(b) != "A" {
			return fmt.Errorf("child does not see parent's file: %q, %v", b, err)
		}
		return writeFile(filepath.Join(r, "b"), "B", 0o644)
	})
	in, err := sn.Stat(ctx, "child")
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != "child" || in.Parent != "base" || in.Kind != snapshot.KindCommitted || in.Created.IsZero() {
		t.Errorf("Stat(child) = %+v", in)
	}
	if _, err := sn.Stat(ctx, "child-active"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("Stat of a committed key: %v, want ErrNotFound", err)
	}
	// A view sees the chain and is read-only.
	if _, err := sn.View(ctx, "v", "child"); err != nil {
		t.Fatal(err)
	}
	if in, err := sn.Stat(ctx, "v"); err != nil || in.Kind != snapshot.KindView || in.Parent != "child" {
		t.Errorf("Stat(v) = %+v, %v", in, err)
	}
	withTree(t, sn, "v", func(r string) error {
		for _, f := range []string{"a", "b"} {
			if _, err := os.Stat(filepath.Join(r, f)); err != nil {
				return fmt.Errorf("view misses %s: %w", f, err)
			}
		}
		if err := os.WriteFile(filepath.Join(r, "c"), nil, 0o644); !errors.Is(err, unix.EROFS) {
			return fmt.Errorf("writing into a view: %v, want EROFS", err)
		}
		return nil
	})
	if err := sn.Commit(ctx, "vc", "v"); err == nil {
		t.Error("committing a view succeeded")
	}
	if err := sn.Remove(ctx, "child"); err == nil {
		t.Error("removing a snapshot with a view on it succeeded")
	}
	var names []string
	if err := sn.Walk(ctx, func(in snapshot.Info) error { names = append(names, in.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, ","); got != "base,child,v" {
		t.Errorf("Walk = %s, want base,child,v", got)
	}
	for _, k := range []string{"v", "child", "base"} {
		if err := sn.Remove(ctx, k); err != nil {
			t.Fatalf("Remove(%q): %v", k, err)
		}
	}
	if err := sn.Walk(ctx, func(in snapshot.Info) error { return fmt.Errorf("left over: %s", in.Name) }); err != nil {
		t.Error(err)
	}
}

func testErrors(t *testing.T, sn snapshot.Snapshotter) {
	ctx := context.Background()
	if _, err := sn.Prepare(ctx, "a", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(ctx, "c", ""); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func() error
		want error // nil: any error
	}{
		{"prepare existing", func() error { _, err := sn.Prepare(ctx, "a", ""); return err }, snapshot.ErrAlreadyExists},
		{"view existing", func() error { _, err := sn.View(ctx, "a", ""); return err }, snapshot.ErrAlreadyExists},
		{"missing parent", func() error { _, err := sn.Prepare(ctx, "b", "nope"); return err }, snapshot.ErrNotFound},
		{"active parent", func() error { _, err := sn.Prepare(ctx, "b", "a"); return err }, nil},
		{"bad name", func() error { _, err := sn.Prepare(ctx, "x/y", ""); return err }, nil},
		{"empty name", func() error { _, err := sn.Prepare(ctx, "", ""); return err }, nil},
		{"mounts missing", func() error { _, err := sn.Mounts(ctx, "nope"); return err }, snapshot.ErrNotFound},
		{"stat missing", func() error { _, err := sn.Stat(ctx, "nope"); return err }, snapshot.ErrNotFound},
		{"remove missing", func() error { return sn.Remove(ctx, "nope") }, snapshot.ErrNotFound},
		{"commit missing", func() error { return sn.Commit(ctx, "n", "nope") }, snapshot.ErrNotFound},
		{"diff active", func() error { return sn.Diff(ctx, "a", io_discard{}) }, nil},
		{"diff missing", func() error { return sn.Diff(ctx, "nope", io_discard{}) }, snapshot.ErrNotFound},
		{"apply missing", func() error { return sn.Apply(ctx, "nope", strings.NewReader("")) }, snapshot.ErrNotFound},
		{"commit onto existing name", func() error {
			if err := sn.Commit(ctx, "done", "c"); err != nil {
				return fmt.Errorf("first commit: %w", err)
			}
			return sn.Commit(ctx, "done", "a")
		}, snapshot.ErrAlreadyExists},
		{"apply committed", func() error { return sn.Apply(ctx, "done", strings.NewReader("")) }, nil},
		{"mounts committed", func() error { _, err := sn.Mounts(ctx, "done"); return err }, nil},
	}
	for _, tt := range tests {
		err := tt.do()
		switch {
		case err == nil:
			t.Errorf("%s: no error", tt.name)
		case tt.want != nil && !errors.Is(err, tt.want):
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	// The failed Prepare calls left nothing behind.
	if _, err := sn.Prepare(ctx, "b", ""); err != nil {
		t.Errorf("Prepare(b) after failed attempts: %v", err)
	}
}

type io_discard struct{}

func (io_discard) Write(p []byte) (int, error) { return len(p), nil }

func testPersistence(t *testing.T, newSnapshotter func(t *testing.T, root string) snapshot.Snapshotter) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "root")
	sn := newSnapshotter(t, root)
	commitWith(t, sn, "base", "", func(r string) error { return writeFile(filepath.Join(r, "f"), "base", 0o644) })
	commitWith(t, sn, "name with spaces:and,punct", "base", func(r string) error {
		return writeFile(filepath.Join(r, "g"), "child", 0o600)
	})
	if _, err := sn.Prepare(ctx, "open", "name with spaces:and,punct"); err != nil {
		t.Fatal(err)
	}
	var before []snapshot.Info
	sn.Walk(ctx, func(in snapshot.Info) error { before = append(before, in); return nil })
	want := viewLines(t, sn, "name with spaces:and,punct")
	if err := sn.Close(); err != nil {
		t.Fatal(err)
	}

	sn = newSnapshotter(t, root)
	defer sn.Close()
	var after []snapshot.Info
	sn.Walk(ctx, func(in snapshot.Info) error { after = append(after, in); return nil })
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("after reopen Walk = %v, want %v", after, before)
	}
	if got := viewLines(t, sn, "name with spaces:and,punct"); !equalLines(got, want) {
		t.Errorf("tree after reopen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	withTree(t, sn, "open", func(r string) error {
		b, err := os.ReadFile(filepath.Join(r, "g"))
		if err != nil || string(b) != "child" {
			return fmt.Errorf("active snapshot after reopen: %q, %v", b, err)
		}
		return nil
	})
	if err := sn.Commit(ctx, "later", "open"); err != nil {
		t.Errorf("Commit after reopen: %v", err)
	}
	if err := sn.Remove(ctx, "base"); err == nil {
		t.Error("removing a parent after reopen succeeded")
	}
}

// baseTree is the parent of the Diff cases.
func baseTree(r string) error {
	j := func(p string) string { return filepath.Join(r, p) }
	return all(
		mkdir(j("d")), writeFile(j("d/a"), "a", 0o644), writeFile(j("d/b"), "b", 0o644),
		writeFile(j("f"), "f", 0o644),
		mkdir(j("x")), writeFile(j("x/y"), "y", 0o644),
		mkdir(j("o")), writeFile(j("o/old1"), "1", 0o644), writeFile(j("o/old2"), "2", 0o644),
		writeFile(j("keep"), "keep", 0o644),
		// Files whose mtimes have no nanoseconds (as after extracting a
		// tar) and files whose mtimes have some, for sameDirent's rules.
		writeFile(j("t0"), "t", 0o644), os.Chtimes(j("t0"), epoch, epoch),
		writeFile(j("tn"), "t", 0o644), os.Chtimes(j("tn"), epoch, epoch.Add(500)),
	)
}

// capV2 is a security.capability value (revision 2) granting
// CAP_NET_BIND_SERVICE permitted.
var capV2 = string([]byte{0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})

// diffCase is one Diff case: a change made on top of baseTree and the
// layer entries it gives (any of want).
type diffCase struct {
	name   string
	change func(r string) error
	want   [][]string // any of these
}

// lossyDiffCases are changes BuildKit leaves out of the layer (sameDirent
// ignores them): applying the diff does not reproduce the tree. Layers
// carry only security.capability among the xattrs.
var lossyDiffCases = map[string]bool{"other xattr added": true, "same nanoseconds, new content": true, "xattrs": true}

// testDiff checks the layer Diff writes for each change on top of
// baseTree, and that applying it reproduces the tree.
func testDiff(t *testing.T, open func(t *testing.T) (snapshot.Snapshotter, string)) {
	sn, _ := open(t)
	commitWith(t, sn, "base", "", baseTree)
	var tests []diffCase
	tests = append(tests, diffContentCases()...)
	tests = append(tests, diffMetadataCases()...)
	tests = append(tests, diffCopyUpAndTimeCases()...)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runDiffCase(t, sn, fmt.Sprintf("case%d", i), tt) })
	}
	testDiffLayered(t, sn)
}

// diffContentCases add, modify, delete and replace entries.
func diffContentCases() []diffCase {
	return []diffCase{
		{"adds", func(r string) error {
			return all(writeFile(filepath.Join(r, "new"), "n", 0o640), mkdir(filepath.Join(r, "nd")),
				writeFile(filepath.Join(r, "nd/z"), "z", 0o644))
		}, [][]string{{`nd/ 5 0755 0:0`, `nd/z 0 0644 0:0 "z"`, `new 0 0640 0:0 "n"`}}},
		{"modify", func(r string) error {
			return os.WriteFile(filepath.Join(r, "d/a"), []byte("A2"), 0)
		}, [][]string{{`d/ 5 0755 0:0`, `d/a 0 0644 0:0 "A2"`}}},
		{"deletes", func(r string) error {
			return all(os.Remove(filepath.Join(r, "d/b")), os.RemoveAll(filepath.Join(r, "x")))
		}, [][]string{{`d/ 5 0755 0:0`, `d/.wh.b 0 0000 0:0 ""`, `.wh.x 0 0000 0:0 ""`}}},
		// Entries come in walk order by real name: the deletion of "b"
		// sorts as "b", between the new "aa" and "c".
		{"whiteouts in walk order", func(r string) error {
			return all(writeFile(filepath.Join(r, "d/c"), "c", 0o644), os.Remove(filepath.Join(r, "d/b")),
				writeFile(filepath.Join(r, "d/aa"), "aa", 0o644), os.Remove(filepath.Join(r, "keep")))
		}, [][]string{{`d/ 5 0755 0:0`, `d/aa 0 0644 0:0 "aa"`, `d/.wh.b 0 0000 0:0 ""`, `d/c 0 0644 0:0 "c"`,
			`.wh.keep 0 0000 0:0 ""`}}},
		{"dir replaced by file", func(r string) error {
			return all(os.RemoveAll(filepath.Join(r, "x")), writeFile(filepath.Join(r, "x"), "file", 0o644))
		}, [][]string{{`x 0 0644 0:0 "file"`}}},
		{"file replaced by dir", func(r string) error {
			return all(os.Remove(filepath.Join(r, "f")), mkdir(filepath.Join(r, "f")),
				writeFile(filepath.Join(r, "f/z"), "z", 0o644))
		}, [][]string{{`f/ 5 0755 0:0`, `f/z 0 0644 0:0 "z"`}}},
		{"opaque dir", func(r string) error {
			return all(os.RemoveAll(filepath.Join(r, "o")), mkdir(filepath.Join(r, "o")),
				writeFile(filepath.Join(r, "o/new"), "n", 0o644))
		}, [][]string{{`o/ 5 0755 0:0`, `o/new 0 0644 0:0 "n"`, `o/.wh.old1 0 0000 0:0 ""`, `o/.wh.old2 0 0000 0:0 ""`}}},
		// A recreated directory is diffed entry by entry against the one
		// it replaces, with a mode change written and a file that became
		// a directory.
		{"recreated dir with changes", func(r string) error {
			o := filepath.Join(r, "o")
			return all(os.RemoveAll(o), os.Mkdir(o, 0o700), os.Chmod(o, 0o700), mkdir(filepath.Join(o, "old1")),
				writeFile(filepath.Join(o, "old1/in"), "i", 0o644))
		}, [][]string{{`o/ 5 0700 0:0`, `o/old1/ 5 0755 0:0`, `o/old1/in 0 0644 0:0 "i"`, `o/.wh.old2 0 0000 0:0 ""`}}},
		// Recreating a directory exactly (same entries, same contents and
		// file times) is no change at all.
		{"recreated dir unchanged", func(r string) error {
			d := filepath.Join(r, "d")
			var sts [2]unix.Stat_t
			for i, n := range []string{"a", "b"} {
				if err := unix.Lstat(filepath.Join(d, n), &sts[i]); err != nil {
					return err
				}
			}
			if err := all(os.RemoveAll(d), mkdir(d)); err != nil {
				return err
			}
			for i, n := range []string{"a", "b"} {
				p := filepath.Join(d, n)
				if err := all(writeFile(p, n, 0o644), unix.UtimesNanoAt(unix.AT_FDCWD, p,
					[]unix.Timespec{sts[i].Atim, sts[i].Mtim}, unix.AT_SYMLINK_NOFOLLOW)); err != nil {
					return err
				}
			}
			return nil
		}, [][]string{{}}},
		{"hard links", func(r string) error {
			return all(writeFile(filepath.Join(r, "h1"), "hl", 0o644),
				os.Link(filepath.Join(r, "h1"), filepath.Join(r, "h2")))
		}, [][]string{{`h1 0 0644 0:0 "hl"`, `h2 1 0644 0:0 -> h1`}}},
		{"symlinks", func(r string) error {
			return all(os.Symlink("../../etc/passwd", filepath.Join(r, "s")), os.Symlink("d/a", filepath.Join(r, "s2")))
		}, [][]string{{`s 2 0777 0:0 -> ../../etc/passwd`, `s2 2 0777 0:0 -> d/a`}}},
	}
}

// diffMetadataCases change owners, modes, xattrs and entry types.
func diffMetadataCases() []diffCase {
	return []diffCase{
		{"setuid and owners", func(r string) error {
			p := filepath.Join(r, "su")
			return all(writeFile(p, "x", 0o755), os.Chown(p, 1000, 2000), unix.Chmod(p, 0o6755))
		}, [][]string{{`su 0 6755 1000:2000 "x"`}}},
		{"xattrs", func(r string) error {
			p := filepath.Join(r, "xa")
			return all(writeFile(p, "x", 0o755), unix.Lsetxattr(p, "user.foo", []byte("bar"), 0),
				unix.Lsetxattr(p, "security.capability", []byte(capV2), 0))
		}, [][]string{{fmt.Sprintf(`xa 0 0755 0:0 "x" [security.capability=%q]`, capV2)}}},
		{"device nodes", func(r string) error {
			return all(unix.Mknod(filepath.Join(r, "cdev"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))),
				unix.Mknod(filepath.Join(r, "bdev"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))),
				unix.Mkfifo(filepath.Join(r, "fifo"), 0o644), unix.Chmod(filepath.Join(r, "fifo"), 0o644))
		}, [][]string{{`bdev 4 0600 0:0 7,0`, `cdev 3 0600 0:0 1,3`, `fifo 6 0644 0:0`}}},
		// A RUN step's mount-point stub: created in an existing dir and
		// removed again with the dir's times restored. Overlay copies the
		// dir up, but nothing in it changed.
		{"dir copied up unchanged", func(r string) error {
			d := filepath.Join(r, "d")
			return keepTimes(d, func() error {
				return all(writeFile(filepath.Join(d, "stub"), "", 0o644), os.Remove(filepath.Join(d, "stub")))
			})
		}, [][]string{{}}},
		{"dir copied up with a new file", func(r string) error {
			d := filepath.Join(r, "d")
			return keepTimes(d, func() error {
				return all(writeFile(filepath.Join(d, "stub"), "", 0o644), os.Remove(filepath.Join(d, "stub")),
					writeFile(filepath.Join(d, "new"), "n", 0o644))
			})
		}, [][]string{{`d/ 5 0755 0:0`, `d/new 0 0644 0:0 "n"`}}},
		{"dir mode changed", func(r string) error {
			return os.Chmod(filepath.Join(r, "x"), 0o700)
		}, [][]string{{`x/ 5 0700 0:0`}}},
		// sameDirent: directory mtimes do not count (BuildKit compares
		// only mode, owners, device and capabilities of directories).
		{"dir mtime changed", func(r string) error {
			return os.Chtimes(filepath.Join(r, "x"), epoch, epoch)
		}, [][]string{{}}},
		{"dir owner changed", func(r string) error {
			return os.Chown(filepath.Join(r, "x"), 7, 8)
		}, [][]string{{`x/ 5 0755 7:8`}}},
	}
}

// diffCopyUpAndTimeCases are what overlay copies up unchanged and the
// mtime rules of sameDirent.
func diffCopyUpAndTimeCases() []diffCase {
	return []diffCase{
		// A file that overlay copied up without changing it is no change.
		{"file copied up unchanged", func(r string) error {
			return os.Chown(filepath.Join(r, "keep"), 0, 0)
		}, [][]string{{}}},
		{"file mtime changed", func(r string) error {
			return os.Chtimes(filepath.Join(r, "keep"), epoch, epoch)
		}, [][]string{{`keep 0 0644 0:0 "keep"`}}},
		{"capability added", func(r string) error {
			return unix.Lsetxattr(filepath.Join(r, "keep"), "security.capability", []byte(capV2), 0)
		}, [][]string{{fmt.Sprintf(`keep 0 0644 0:0 "keep" [security.capability=%q]`, capV2)}}},
		{"other xattr added", func(r string) error {
			return unix.Lsetxattr(filepath.Join(r, "keep"), "user.note", []byte("n"), 0)
		}, [][]string{{}}},
		// Truncated mtimes on both sides: the content decides.
		{"truncated mtime, same content", func(r string) error {
			p := filepath.Join(r, "t0")
			return all(writeFile(p, "t", 0o644), os.Chtimes(p, epoch, epoch))
		}, [][]string{{}}},
		{"truncated mtime, new content", func(r string) error {
			p := filepath.Join(r, "t0")
			return all(writeFile(p, "u", 0o644), os.Chtimes(p, epoch, epoch))
		}, [][]string{{`t0 0 0644 0:0 "u"`}}},
		// Otherwise the nanoseconds decide, not the content.
		{"same nanoseconds, new content", func(r string) error {
			p := filepath.Join(r, "tn")
			return all(writeFile(p, "u", 0o644), os.Chtimes(p, epoch, epoch.Add(500)))
		}, [][]string{{}}},
		{"other nanoseconds, same content", func(r string) error {
			p := filepath.Join(r, "tn")
			return all(writeFile(p, "t", 0o644), os.Chtimes(p, epoch, epoch.Add(700)))
		}, [][]string{{`tn 0 0644 0:0 "t"`}}},
	}
}

// runDiffCase commits tt.change on base as name, checks its diff and that
// applying the diff onto base gives the same tree.
func runDiffCase(t *testing.T, sn snapshot.Snapshotter, name string, tt diffCase) {
	commitWith(t, sn, name, "base", tt.change)
	layer := diff(t, sn, name)
	got := entries(t, layer, false)
	ok := false
	for _, w := range tt.want {
		ok = ok || equalLines(got, w)
	}
	if !ok {
		t.Errorf("Diff entries:\n%s\nwant one of:\n%v", strings.Join(got, "\n"), tt.want)
	}
	if again := diff(t, sn, name); string(again) != string(layer) {
		t.Error("Diff is not deterministic")
	}
	if lossyDiffCases[tt.name] {
		return
	}
	// Applying the diff onto the parent gives the same tree.
	applyCommit(t, sn, name+"-rt", "base", layer)
	want, gotTree := viewLines(t, sn, name), viewLines(t, sn, name+"-rt")
	if !equalLines(gotTree, want) {
		t.Errorf("tree after applying the diff:\n%s\nwant:\n%s", strings.Join(gotTree, "\n"), strings.Join(want, "\n"))
	}
}

// testDiffLayered checks diffs over more than one snapshot.
func testDiffLayered(t *testing.T, sn snapshot.Snapshotter) {
	// The copied-up dir is compared with the topmost lower dir it
	// shadows, not with the bottom layer's.
	t.Run("dir copied up over a changed dir", func(t *testing.T) {
		commitWith(t, sn, "chmod-x", "base", func(r string) error { return os.Chmod(filepath.Join(r, "x"), 0o700) })
		commitWith(t, sn, "stub-in-x", "chmod-x", func(r string) error {
			x := filepath.Join(r, "x")
			return keepTimes(x, func() error {
				return all(writeFile(filepath.Join(x, "stub"), "", 0o644), os.Remove(filepath.Join(x, "stub")))
			})
		})
		if got := entries(t, diff(t, sn, "stub-in-x"), false); len(got) != 0 {
			t.Errorf("Diff = %v, want no entries", got)
		}
	})
	// A directory recreated where the parent has none (it was deleted one
	// snapshot below) is simply new: no opaque marker, no whiteouts. Over
	// overlay the recreated dir is opaque, but BuildKit only diffs opaque
	// dirs that shadow something.
	t.Run("recreated dir deleted below", func(t *testing.T) {
		commitWith(t, sn, "rm-o", "base", func(r string) error { return os.RemoveAll(filepath.Join(r, "o")) })
		if got, want := entries(t, diff(t, sn, "rm-o"), false), []string{`.wh.o 0 0000 0:0 ""`}; !equalLines(got, want) {
			t.Errorf("Diff(rm-o) = %v, want %v", got, want)
		}
		commitWith(t, sn, "re-o", "rm-o", func(r string) error {
			return all(mkdir(filepath.Join(r, "o")), writeFile(filepath.Join(r, "o/old1"), "again", 0o644))
		})
		want := []string{`o/ 5 0755 0:0`, `o/old1 0 0644 0:0 "again"`}
		if got := entries(t, diff(t, sn, "re-o"), false); !equalLines(got, want) {
			t.Errorf("Diff(re-o) = %v, want %v", got, want)
		}
	})
	t.Run("mtime", func(t *testing.T) {
		commitWith(t, sn, "mtime", "base", func(r string) error {
			p := filepath.Join(r, "t")
			return all(writeFile(p, "t", 0o644), os.Chtimes(p, epoch, epoch.Add(1500*time.Millisecond)))
		})
		got := entries(t, diff(t, sn, "mtime"), true)
		// Rounded to the nearest second, as archive/tar (and so
		// containerd's writer, BuildKit's) does.
		want := `t 0 0644 0:0 "t" 2001-02-03T04:05:08Z`
		if len(got) != 1 || got[0] != want {
			t.Errorf("Diff = %v, want [%s]", got, want)
		}
	})
}

// craftedLayer covers every entry type and piece of metadata, in the
// canonical order Diff writes.
func craftedLayer(t *testing.T) []byte {
	long := strings.Repeat("long-directory-name/", 8)
	var longDirs []tarEntry
	for i := 1; i <= 8; i++ {
		longDirs = append(longDirs, tarEntry{name: "x/" + strings.Repeat("long-directory-name/", i), typ: tar.TypeDir, mode: 0o755})
	}
	return makeTar(t, append([]tarEntry{
		tarEntry{name: "bin/", typ: tar.TypeDir, mode: 0o755, mtime: epoch.Add(time.Hour)},
		tarEntry{name: "bin/ping", typ: tar.TypeReg, mode: 0o4755, body: "ping", xattrs: map[string]string{"security.capability": capV2}},
		tarEntry{name: "bin/ping2", typ: tar.TypeLink, link: "bin/ping", mode: 0o4755},
		tarEntry{name: "bin/sh", typ: tar.TypeSymlink, link: "/bin/busybox", mode: 0o777},
		tarEntry{name: "dev/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
		tarEntry{name: "dev/pipe", typ: tar.TypeFifo, mode: 0o600},
		tarEntry{name: "home/", typ: tar.TypeDir, mode: 0o750, uid: 1000, gid: 1000},
		tarEntry{name: "home/.profile", typ: tar.TypeReg, mode: 0o600, uid: 1000, gid: 1000, body: "export A=1\n"},
		tarEntry{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		tarEntry{name: "x/", typ: tar.TypeDir, mode: 0o755}},
		append(longDirs,
			tarEntry{name: "x/" + long + "file-with-a-long-name-" + strings.Repeat("n", 60), typ: tar.TypeReg, mode: 0o644, body: "deep"},
		)...)...,
	)
}

func testApplyRoundTrip(t *testing.T, sn snapshot.Snapshotter) {
	layer := craftedLayer(t)
	want := entries(t, layer, true)
	applyCommit(t, sn, "crafted", "", layer)
	if got := entries(t, diff(t, sn, "crafted"), true); !equalLines(got, want) {
		t.Errorf("Diff of applied layer:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The same layer on top of a parent: every entry is new there too.
	commitWith(t, sn, "base", "", func(r string) error { return writeFile(filepath.Join(r, "other"), "o", 0o644) })
	applyCommit(t, sn, "crafted2", "base", layer)
	if got := entries(t, diff(t, sn, "crafted2"), true); !equalLines(got, want) {
		t.Errorf("Diff of layer applied on a parent:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func testApplyWhiteouts(t *testing.T, sn snapshot.Snapshotter) {
	commitWith(t, sn, "base", "", baseTree)
	layer := makeTar(t,
		tarEntry{name: ".wh.x", typ: tar.TypeReg},
		dirE("d/"),
		tarEntry{name: "d/.wh.a", typ: tar.TypeReg},
		dirE("o/"),
		tarEntry{name: "o/.wh..wh..opq", typ: tar.TypeReg},
		fileE("o/n", "new"),
		tarEntry{name: "o/.wh..wh.plnk", typ: tar.TypeReg}, // aufs metadata: ignored
	)
	applyCommit(t, sn, "wh", "base", layer)
	got := viewLines(t, sn, "wh")
	var names []string
	for _, l := range got {
		names = append(names, strings.Fields(l)[0])
	}
	if want := "d,d/b,f,keep,o,o/n,t0,tn"; strings.Join(names, ",") != want {
		t.Errorf("tree after whiteouts: %v, want %s", names, want)
	}
	// And the diff says the same again.
	applyCommit(t, sn, "wh-rt", "base", diff(t, sn, "wh"))
	if rt := viewLines(t, sn, "wh-rt"); !equalLines(rt, got) {
		t.Errorf("round trip of whiteouts:\n%s\nwant:\n%s", strings.Join(rt, "\n"), strings.Join(got, "\n"))
	}
}

// testWhiteoutSymlinks whites out symlinks of a parent (to a dir and to
// a file, relative and absolute, and one a hard link shares): the links
// go, their targets stay in the merged view.
func testWhiteoutSymlinks(t *testing.T, sn snapshot.Snapshotter) {
	commitWith(t, sn, "links", "", func(r string) error {
		j := func(p string) string { return filepath.Join(r, p) }
		return all(
			mkdir(j("dir")), writeFile(j("dir/a"), "a", 0o644),
			writeFile(j("file"), "f", 0o600),
			os.Symlink("dir", j("ldir")), os.Symlink("/dir", j("labsdir")),
			os.Symlink("file", j("lfile")), os.Symlink("/file", j("labsfile")),
			os.Symlink("dir", j("lshared")), os.Link(j("lshared"), j("lshared2")),
			mkdir(j("sub")), os.Symlink("../dir", j("sub/lup")),
		)
	})
	layer := makeTar(t,
		tarEntry{name: ".wh.ldir", typ: tar.TypeReg},
		tarEntry{name: ".wh.labsdir", typ: tar.TypeReg},
		tarEntry{name: ".wh.lfile", typ: tar.TypeReg},
		tarEntry{name: ".wh.labsfile", typ: tar.TypeReg},
		tarEntry{name: ".wh.lshared", typ: tar.TypeReg},
		dirE("sub/"),
		tarEntry{name: "sub/.wh.lup", typ: tar.TypeReg},
	)
	applyCommit(t, sn, "links-wh", "links", layer)
	got := viewLines(t, sn, "links-wh")
	var names []string
	for _, l := range got {
		names = append(names, strings.Fields(l)[0])
	}
	if want := "dir,dir/a,file,lshared2,sub"; strings.Join(names, ",") != want {
		t.Errorf("tree after whiteouts of symlinks: %v, want %s\n%s", names, want, strings.Join(got, "\n"))
	}
	// The targets are unchanged: the same lines as in the parent.
	parent := map[string]string{}
	for _, l := range viewLines(t, sn, "links") {
		parent[strings.Fields(l)[0]] = l
	}
	for _, l := range got {
		if n := strings.Fields(l)[0]; n == "dir/a" || n == "file" || n == "lshared2" {
			// lshared2's other name is gone: its line loses "linked-to".
			if was, _, _ := strings.Cut(parent[n], " linked-to="); was != l {
				t.Errorf("%s changed by the whiteouts: %s, was %s", n, l, was)
			}
		}
	}
	// The whiteouts round-trip through Diff.
	applyCommit(t, sn, "links-wh-rt", "links", diff(t, sn, "links-wh"))
	if rt := viewLines(t, sn, "links-wh-rt"); !equalLines(rt, got) {
		t.Errorf("round trip of symlink whiteouts:\n%s\nwant:\n%s", strings.Join(rt, "\n"), strings.Join(got, "\n"))
	}
}

// hostileEnv is where testHostile's layers try to escape to.
type hostileEnv struct {
	parent, sentinel      string // the sentinel dir outside the snapshotter root
	upToRoot, relSentinel string // relative paths up to / and to the sentinel
	runName               string // a file name for the host's /run
}

// hostileCase is one layer that tries to escape the snapshot.
type hostileCase struct {
	name    string
	layer   []byte
	wantErr bool
	check   func(r string) error // inside the applied snapshot
}

// testHostile applies layers that try to write outside the snapshot, on
// no parent and on a parent, and checks that a sentinel dir beside the
// root is untouched.
func testHostile(t *testing.T, newSnapshotter func(t *testing.T, root string) snapshot.Snapshotter) {
	parent := t.TempDir()
	sentinel := filepath.Join(parent, "victim")
	if err := os.Mkdir(sentinel, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sentinel, "file"), []byte("sentinel"), 0o644); err != nil {
		t.Fatal(err)
	}
	sn := newSnapshotter(t, filepath.Join(parent, "root"))
	defer sn.Close()
	commitWith(t, sn, "base", "", func(r string) error { return writeFile(filepath.Join(r, "basefile"), "b", 0o644) })

	// Relative targets that reach the sentinel from any depth if followed
	// naively, and its absolute path.
	upToRoot := strings.Repeat("../", 40)
	relSentinel := upToRoot + strings.TrimPrefix(sentinel, "/")
	runName := fmt.Sprintf("hostile-%d", time.Now().UnixNano())

	e := hostileEnv{parent: parent, sentinel: sentinel, upToRoot: upToRoot, relSentinel: relSentinel, runName: runName}
	testHostileEscapingParent(t, sn, e)
	for i, tt := range hostileCases(t, e) {
		for _, parentName := range []string{"", "base"} {
			t.Run(fmt.Sprintf("%s/parent=%q", tt.name, parentName), func(t *testing.T) {
				runHostileCase(t, sn, e, fmt.Sprintf("h%d-%s", i, parentName), parentName, tt)
			})
		}
	}
}

// hostileCases are layers with escaping names, links and whiteouts.
func hostileCases(t *testing.T, e hostileEnv) []hostileCase {
	sentinel, relSentinel, upToRoot, runName := e.sentinel, e.relSentinel, e.upToRoot, e.runName
	return []hostileCase{
		{"dotdot name", makeTar(t, fileE("../../../../victim/file", "pwned")), true, nil},
		{"dotdot deep", makeTar(t, fileE("a/../../"+relSentinel+"/new", "pwned")), true, nil},
		{"absolute name", makeTar(t, fileE(sentinel+"/new", "inside")), false, func(r string) error {
			b, err := os.ReadFile(filepath.Join(r, sentinel, "new"))
			if err != nil || string(b) != "inside" {
				return fmt.Errorf("absolute entry not inside the snapshot: %q, %v", b, err)
			}
			return nil
		}},
		{"write through relative symlink", makeTar(t, symE("l", relSentinel), fileE("l/new", "inside")), false, func(r string) error {
			_, err := os.Stat(filepath.Join(r, sentinel, "new"))
			return err
		}},
		{"write through absolute symlink", makeTar(t, symE("l", sentinel), fileE("l/file", "pwned")), false, nil},
		{"two-hop up chain", makeTar(t, symE("up", upToRoot), dirE("d/"), symE("d/up", "../up"),
			fileE("d/up"+sentinel+"/file", "pwned")), false, nil},
		{"up dot chain", makeTar(t, symE("up", ".."), symE("up2", "up/up/up/up/up/up/up/up/up/up/up/up"),
			fileE("up2"+sentinel+"/file", "pwned")), false, nil},
		{"var/run absolute symlink", makeTar(t, dirE("var/"), symE("var/run", "/run"), dirE("run/"),
			fileE("var/run/"+runName, "ok")), false, func(r string) error {
			if _, err := os.Lstat("/run/" + runName); err == nil {
				os.Remove("/run/" + runName)
				return errors.New("file landed in the host's /run")
			}
			b, err := os.ReadFile(filepath.Join(r, "run", runName))
			if err != nil || string(b) != "ok" {
				return fmt.Errorf("var/run/x not in the snapshot's /run: %q, %v", b, err)
			}
			return nil
		}},
		{"hard link dotdot", makeTar(t, linkE("hl", "../../../../victim/file")), true, nil},
		{"hard link absolute", makeTar(t, linkE("hl", sentinel+"/file")), true, nil},
		{"hard link through symlink", makeTar(t, symE("l", relSentinel), linkE("hl", "l/file")), true, nil},
		{"whiteout through symlink", makeTar(t, symE("l", relSentinel), tarEntry{name: "l/.wh.file", typ: tar.TypeReg}), false, nil},
		{"whiteout dotdot", makeTar(t, tarEntry{name: "../victim/.wh.file", typ: tar.TypeReg}), true, nil},
		{"whiteout .wh.", makeTar(t, tarEntry{name: ".wh.", typ: tar.TypeReg}), true, nil},
		{"whiteout .wh..", makeTar(t, tarEntry{name: "d/.wh..", typ: tar.TypeReg}), true, nil},
		{"whiteout .wh...", makeTar(t, tarEntry{name: ".wh...", typ: tar.TypeReg}), true, nil},
		{"opaque through symlink", makeTar(t, symE("l", sentinel), tarEntry{name: "l/.wh..wh..opq", typ: tar.TypeReg}), false, nil},
		// A hard link to an escaping symlink is a second name of the
		// symlink itself (never of its target); entries written at that
		// name replace it and no chmod or write goes through to the host.
		{"hard link to absolute symlink, file over it", makeTar(t, symE("l", sentinel+"/file"), linkE("hl", "l"),
			tarEntry{name: "hl", typ: tar.TypeReg, mode: 0o777, body: "pwned"}), false, regularFile("hl", "pwned", 0o777)},
		{"hard link to relative symlink, file over it", makeTar(t, symE("l", relSentinel+"/file"), linkE("hl", "l"),
			tarEntry{name: "hl", typ: tar.TypeReg, mode: 0o600, body: "pwned"}), false, regularFile("hl", "pwned", 0o600)},
		{"hard link to dir symlink, dir over it", makeTar(t, symE("l", sentinel), linkE("hl", "l"),
			tarEntry{name: "hl/", typ: tar.TypeDir, mode: 0o777}, tarEntry{name: "hl/file", typ: tar.TypeReg, mode: 0o666, body: "pwned"}),
			false, regularFile("hl/file", "pwned", 0o666)},
		{"hard link to dir symlink, write below it", makeTar(t, symE("l", relSentinel), linkE("hl", "l"), fileE("hl/new", "inside")), false, func(r string) error {
			_, err := os.Stat(filepath.Join(r, sentinel, "new"))
			return err
		}},
		{"hard link to symlink, hard link over it", makeTar(t, fileE("own", "own"), symE("l", sentinel+"/file"), linkE("hl", "l"),
			tarEntry{name: "hl", typ: tar.TypeLink, link: "own", mode: 0o777}), false, regularFile("hl", "own", 0o644)},
		// A whiteout of a symlink never touches its target. (In the same
		// layer it hides nothing: whiteouts apply to lower layers only,
		// as the OCI image spec says; escapingParent below whites out
		// a parent's links.)
		{"whiteout of absolute symlink, same layer", makeTar(t, symE("l", sentinel), tarEntry{name: ".wh.l", typ: tar.TypeReg}), false, symlinkTo("l", sentinel)},
		{"whiteout of file symlink, same layer", makeTar(t, symE("l", relSentinel+"/file"), tarEntry{name: ".wh.l", typ: tar.TypeReg}), false, symlinkTo("l", relSentinel+"/file")},
		{"dir over symlink", makeTar(t, symE("l", sentinel), dirE("l/"), fileE("l/file", "inside")), false, func(r string) error {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(r, "l"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return fmt.Errorf("l is not a directory after a dir entry replaced the symlink: %v", err)
			}
			return nil
		}},
	}
}

// testHostileEscapingParent whites out a parent's escaping symlinks.
func testHostileEscapingParent(t *testing.T, sn snapshot.Snapshotter, e hostileEnv) {
	sentinel, relSentinel := e.sentinel, e.relSentinel
	// A parent whose symlinks escape (to the sentinel dir and file, by
	// absolute and relative paths), and a hard link to one of them.
	commitWith(t, sn, "escapingParent", "", func(r string) error {
		return all(os.Symlink(sentinel, filepath.Join(r, "ldir")), os.Symlink(relSentinel+"/file", filepath.Join(r, "lfile")),
			os.Symlink(sentinel+"/file", filepath.Join(r, "labsfile")), os.Link(filepath.Join(r, "labsfile"), filepath.Join(r, "hl")))
	})
	t.Run("whiteouts of a parent's escaping symlinks", func(t *testing.T) {
		applyCommit(t, sn, "escaping-wh", "escapingParent", makeTar(t,
			tarEntry{name: ".wh.ldir", typ: tar.TypeReg}, tarEntry{name: ".wh.lfile", typ: tar.TypeReg},
			tarEntry{name: ".wh.labsfile", typ: tar.TypeReg},
			// And a file written over the remaining hard link of the
			// symlink: it replaces the link.
			tarEntry{name: "hl", typ: tar.TypeReg, mode: 0o777, body: "pwned"}))
		var names []string
		for _, l := range viewLines(t, sn, "escaping-wh") {
			names = append(names, strings.Fields(l)[0])
		}
		if strings.Join(names, ",") != "hl" {
			t.Errorf("tree after whiteouts of escaping symlinks: %v, want [hl]", names)
		}
		checkSentinel(t, e.parent, sentinel)
	})
}

// runHostileCase applies tt.layer on parentName as key: it fails if and
// only if tt wants an error, and the sentinel is untouched.
func runHostileCase(t *testing.T, sn snapshot.Snapshotter, e hostileEnv, key, parentName string, tt hostileCase) {
	ctx := context.Background()
	if _, err := sn.Prepare(ctx, key, parentName); err != nil {
		t.Fatal(err)
	}
	err := sn.Apply(ctx, key, strings.NewReader(string(tt.layer)))
	if tt.wantErr && err == nil {
		t.Error("Apply succeeded, want an error")
	}
	if !tt.wantErr && err != nil {
		t.Errorf("Apply: %v", err)
	}
	if err == nil && tt.check != nil {
		withTree(t, sn, key, tt.check)
	}
	checkSentinel(t, e.parent, e.sentinel)
}

// regularFile checks that name is a regular file with body and mode in
// the tree.
func regularFile(name, body string, mode os.FileMode) func(r string) error {
	return func(r string) error {
		p := filepath.Join(r, name)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != mode {
			return fmt.Errorf("%s: mode %v, want a regular file with %v", name, fi.Mode(), mode)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != body {
			return fmt.Errorf("%s: %q, %v; want %q", name, b, err, body)
		}
		return nil
	}
}

// symlinkTo checks that name is a symlink to target in the tree.
func symlinkTo(name, target string) func(r string) error {
	return func(r string) error {
		got, err := os.Readlink(filepath.Join(r, name))
		if err != nil || got != target {
			return fmt.Errorf("%s: symlink to %q, %v; want %q", name, got, err, target)
		}
		return nil
	}
}

func checkSentinel(t *testing.T, parent, sentinel string) {
	t.Helper()
	for p, want := range map[string]os.FileMode{sentinel: os.ModeDir | 0o755, filepath.Join(sentinel, "file"): 0o644} {
		if fi, err := os.Lstat(p); err != nil || fi.Mode() != want {
			t.Fatalf("sentinel %s: mode changed: %v, %v; want %v", p, fi.Mode(), err, want)
		}
	}
	ents, err := os.ReadDir(sentinel)
	if err != nil {
		t.Fatalf("sentinel: %v", err)
	}
	if len(ents) != 1 || ents[0].Name() != "file" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("sentinel dir changed: %v", names)
	}
	b, err := os.ReadFile(filepath.Join(sentinel, "file"))
	if err != nil || string(b) != "sentinel" {
		t.Fatalf("sentinel file changed: %q, %v", b, err)
	}
	top, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != 2 {
		t.Fatalf("entries appeared beside the snapshot root: %v", top)
	}
}

func testDeepChain(t *testing.T, sn snapshot.Snapshotter, depth int) {
	parent := ""
	for i := 0; i < depth; i++ {
		name := fmt.Sprintf("layer-%03d", i)
		applyCommit(t, sn, name, parent, makeTar(t, fileE(fmt.Sprintf("f%03d", i), name)))
		parent = name
	}
	ctx := context.Background()
	if _, err := sn.Prepare(ctx, "top", parent); err != nil {
		t.Fatal(err)
	}
	withTree(t, sn, "top", func(r string) error {
		for i := 0; i < depth; i++ {
			b, err := os.ReadFile(filepath.Join(r, fmt.Sprintf("f%03d", i)))
			if err != nil || string(b) != fmt.Sprintf("layer-%03d", i) {
				return fmt.Errorf("layer %d not visible at depth %d: %q, %v", i, depth, b, err)
			}
		}
		return writeFile(filepath.Join(r, "top"), "top", 0o644)
	})
	if err := sn.Commit(ctx, "top-c", "top"); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, diff(t, sn, "top-c"), false); len(got) != 1 || got[0] != `top 0 0644 0:0 "top"` {
		t.Errorf("Diff at depth %d = %v", depth, got)
	}
}

func testConcurrent(t *testing.T, sn snapshot.Snapshotter) {
	ctx := context.Background()
	commitWith(t, sn, "base", "", func(r string) error { return writeFile(filepath.Join(r, "f"), "f", 0o644) })
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				key := fmt.Sprintf("g%d-%d", g, i)
				if _, err := sn.Prepare(ctx, key, "base"); err != nil {
					errs <- err
					return
				}
				if err := sn.Apply(ctx, key, strings.NewReader(string(makeTar(t, fileE(key, key))))); err != nil {
					errs <- err
					return
				}
				if err := sn.Commit(ctx, key+"-c", key); err != nil {
					errs <- err
					return
				}
				sn.Walk(ctx, func(snapshot.Info) error { return nil })
				if _, err := sn.Stat(ctx, key+"-c"); err != nil {
					errs <- err
					return
				}
				if err := sn.Diff(ctx, key+"-c", io_discard{}); err != nil {
					errs <- err
					return
				}
				if err := sn.Remove(ctx, key+"-c"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Everyone racing for one name: exactly one wins.
	var won sync.WaitGroup
	wins := make(chan struct{}, 8)
	for g := 0; g < 8; g++ {
		won.Add(1)
		go func() {
			defer won.Done()
			if _, err := sn.Prepare(ctx, "contended", "base"); err == nil {
				wins <- struct{}{}
			} else if !errors.Is(err, snapshot.ErrAlreadyExists) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	won.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(wins) != 1 {
		t.Errorf("%d goroutines created the same snapshot", len(wins))
	}
}
