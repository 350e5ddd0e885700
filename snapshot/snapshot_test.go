package snapshot

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/fsutil"
	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("mounts filesystems; skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func mountinfo(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// overlaySet builds lower/upper/work dirs under dir and returns an overlay
// mount of them; lower holds the file "lower".
func overlaySet(t *testing.T, dir string) []Mount {
	t.Helper()
	for _, d := range []string{"l1", "l2", "u", "w"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "l1", "lower"), []byte("lower"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := append(newOverlayDriver().opts, "workdir="+filepath.Join(dir, "w"), "upperdir="+filepath.Join(dir, "u"),
		"lowerdir="+filepath.Join(dir, "l1")+":"+filepath.Join(dir, "l2"))
	return []Mount{{Type: "overlay", Source: "overlay", Options: opts}}
}

func TestWithMountsPrivate(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	bindSrc := filepath.Join(dir, "bind")
	if err := os.MkdirAll(bindSrc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bindSrc, "b"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	before := mountinfo(t)
	sets := [][]Mount{
		overlaySet(t, filepath.Join(dir, "ov")),
		{{Type: "bind", Source: bindSrc, Options: []string{"rbind", "ro"}}},
		{{Type: "bind", Source: bindSrc, Options: []string{"rbind", "rw"}}},
	}
	var roots []string
	err := WithMounts(context.Background(), sets, func(r []string) error {
		roots = r
		inside, err := os.ReadFile("/proc/thread-self/mountinfo")
		if err != nil {
			return err
		}
		if !strings.Contains(string(inside), " "+r[0]+" ") || !strings.Contains(string(inside), " "+r[1]+" ") {
			return fmt.Errorf("mounts missing from the thread's mount table:\n%s", inside)
		}
		if b, err := os.ReadFile(filepath.Join(r[0], "lower")); err != nil || string(b) != "lower" {
			return fmt.Errorf("overlay tree not visible: %q, %v", b, err)
		}
		if err := os.WriteFile(filepath.Join(r[0], "new"), []byte("x"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(r[1], "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
			return fmt.Errorf("read-only bind is writable: %v", err)
		}
		if r[2] != bindSrc {
			return fmt.Errorf("rw bind root = %s, want the source %s", r[2], bindSrc)
		}
		// The process-wide table (the thread group leader's) is unchanged.
		if host := mountinfo(t); strings.Contains(host, r[0]) {
			return errors.New("mount visible in /proc/self/mountinfo")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if after := mountinfo(t); after != before {
		t.Errorf("mountinfo changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := os.Stat(filepath.Join(dir, "ov", "u", "new")); err != nil {
		t.Errorf("write through the overlay did not reach the upper dir: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(roots[0])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary mount dir %s left behind: %v", filepath.Dir(roots[0]), err)
	}
}

func TestWithMountsErrorsAndPanics(t *testing.T) {
	needRoot(t)
	before := mountinfo(t)
	sentinel := errors.New("fn failed")
	if err := WithMounts(context.Background(), [][]Mount{overlaySet(t, t.TempDir())}, func([]string) error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("error from fn: %v", err)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want boom", r)
			}
		}()
		WithMounts(context.Background(), [][]Mount{overlaySet(t, t.TempDir())}, func([]string) error { panic("boom") })
	}()
	// Many calls: whichever thread runs them (the main thread included),
	// the process's mount table stays the same.
	for i := 0; i < 50; i++ {
		if err := WithMounts(context.Background(), [][]Mount{overlaySet(t, t.TempDir())}, func([]string) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	bad := [][]Mount{{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/nonexistent-lower"}}}}
	if err := WithMounts(context.Background(), bad, func([]string) error { return nil }); err == nil {
		t.Error("mounting a missing lowerdir succeeded")
	}
	if after := mountinfo(t); after != before {
		t.Errorf("mountinfo changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestWithMountsKilled kills a process while it is inside WithMounts and
// checks that its mounts never reached the host's mount table.
func TestWithMountsKilled(t *testing.T) {
	needRoot(t)
	if os.Getenv("SNAPSHOT_TEST_HELPER") == "hold-mount" {
		dir := os.Getenv("SNAPSHOT_TEST_DIR")
		WithMounts(context.Background(), [][]Mount{overlaySet(t, dir)}, func(r []string) error {
			fmt.Printf("mounted %s\n", r[0])
			time.Sleep(time.Minute)
			return nil
		})
		os.Exit(0)
	}
	before := mountinfo(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestWithMountsKilled$")
	cmd.Env = append(os.Environ(), "SNAPSHOT_TEST_HELPER=hold-mount", "SNAPSHOT_TEST_DIR="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "mounted ") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q, %v", line, err)
	}
	target := strings.TrimSpace(strings.TrimPrefix(line, "mounted "))
	if strings.Contains(mountinfo(t), target) {
		t.Errorf("mount %s visible on the host while held", target)
	}
	cmd.Process.Kill()
	cmd.Wait()
	os.RemoveAll(filepath.Dir(target)) // the killed helper could not clean its mount point
	if after := mountinfo(t); after != before {
		t.Errorf("mountinfo changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestOverlayLongChainUsesRelativePaths(t *testing.T) {
	needRoot(t)
	root := filepath.Join(t.TempDir(), strings.Repeat("long-root-", 10))
	sn, err := NewNamed(root, "overlay")
	if err != nil {
		t.Skipf("overlay not usable: %v", err)
	}
	defer sn.Close()
	ctx := context.Background()
	parent := ""
	const depth = 120
	for i := 0; i < depth; i++ {
		key, name := fmt.Sprintf("a%d", i), fmt.Sprintf("c%d", i)
		if _, err := sn.Prepare(ctx, key, parent); err != nil {
			t.Fatal(err)
		}
		// Write straight into the upper dir: this test is about mounting.
		s := sn.(*store).byName[key]
		if err := os.WriteFile(filepath.Join(s.fsDir(), fmt.Sprint(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := sn.Commit(ctx, name, key); err != nil {
			t.Fatal(err)
		}
		parent = name
	}
	ms, err := sn.Prepare(ctx, "top", parent)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Join(ms[0].Options, ",")); n < os.Getpagesize() {
		t.Fatalf("options are only %d bytes; the test needs more than a page", n)
	}
	err = WithMounts(ctx, [][]Mount{ms}, func(r []string) error {
		ents, err := os.ReadDir(r[0])
		if err != nil {
			return err
		}
		if len(ents) != depth {
			return fmt.Errorf("%d entries in the merged tree, want %d", len(ents), depth)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOverlayDiffOpaqueAndOptions(t *testing.T) {
	needRoot(t)
	sn, err := NewNamed(t.TempDir(), "overlay")
	if err != nil {
		t.Skipf("overlay not usable: %v", err)
	}
	defer sn.Close()
	ctx := context.Background()
	if _, err := sn.Prepare(ctx, "a", ""); err != nil {
		t.Fatal(err)
	}
	if err := sn.Apply(ctx, "a", bytes.NewReader(tarOf(t, "d/", "d/old", "moved/", "moved/f"))); err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(ctx, "base", "a"); err != nil {
		t.Fatal(err)
	}
	ms, err := sn.Prepare(ctx, "b", "base")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range newOverlayDriver().opts {
		if !strings.Contains(strings.Join(ms[0].Options, ","), o) {
			t.Errorf("mount options %v lack %s", ms[0].Options, o)
		}
	}
	err = WithMounts(ctx, [][]Mount{ms}, func(r []string) error {
		if err := os.RemoveAll(filepath.Join(r[0], "d")); err != nil {
			return err
		}
		if err := os.Mkdir(filepath.Join(r[0], "d"), 0o755); err != nil {
			return err
		}
		// With redirect_dir=off renaming a lower directory is refused
		// (EXDEV) instead of leaving a redirect in the upper dir.
		if err := os.Rename(filepath.Join(r[0], "moved"), filepath.Join(r[0], "renamed")); !errors.Is(err, unix.EXDEV) {
			return fmt.Errorf("renaming a lower dir: %v, want EXDEV", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(ctx, "c", "b"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := sn.Diff(ctx, "c", &buf); err != nil {
		t.Fatal(err)
	}
	// d is opaque in the upper dir but shadows a lower d: as in BuildKit
	// it is diffed entry by entry, without an opaque marker.
	if got, want := tarNames(t, buf.Bytes()), "d/,d/.wh.old"; got != want {
		t.Errorf("Diff = %s, want %s", got, want)
	}
}

func TestNewChoosesAndRemembers(t *testing.T) {
	if os.Geteuid() == 0 && testing.Short() {
		t.Skip("probing overlay mounts; skipped in -short mode")
	}
	want := "native"
	if overlaySupported(t.TempDir()) == nil {
		want = "overlay"
	}
	root := t.TempDir()
	sn, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	sn.Close()
	if got := sn.(*store).drv.name(); got != want {
		t.Errorf("New chose %s, want %s", got, want)
	}
	other := map[string]string{"overlay": "native", "native": "overlay"}[want]
	if _, err := NewNamed(root, other); err == nil {
		t.Errorf("NewNamed(%s) on a %s root succeeded", other, want)
	}
	if _, err := NewNamed(root, "zfs"); err == nil {
		t.Error("NewNamed(zfs) succeeded")
	}
	sn, err = New(root)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	if got := sn.(*store).drv.name(); got != want {
		t.Errorf("reopened as %s, want %s", got, want)
	}
}

func TestOpenCleansInterruptedWork(t *testing.T) {
	root := t.TempDir()
	sn, err := NewNamed(root, "native")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(context.Background(), "kept", ""); err != nil {
		t.Fatal(err)
	}
	sn.Close()
	// A snapshot dir without metadata (crash during Prepare) and a
	// half-removed one in trash/.
	for _, d := range []string{"snapshots/99/fs", "trash/7/fs"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sn, err = NewNamed(root, "native")
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	for _, d := range []string{"snapshots/99", "trash/7"} {
		if _, err := os.Stat(filepath.Join(root, d)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s not cleaned: %v", d, err)
		}
	}
	if _, err := sn.Stat(context.Background(), "kept"); err != nil {
		t.Errorf("Stat(kept): %v", err)
	}
}

// tarOf makes a layer of directories (names ending in "/") and files.
func tarOf(t *testing.T, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		h := &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(n)), ModTime: time.Unix(1e9, 0)}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(n))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarNames(t *testing.T, layer []byte) string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return strings.Join(names, ",")
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func TestLookupLower(t *testing.T) {
	needRoot(t)
	// Three lower layers, topmost first.
	top, mid, bot := t.TempDir(), t.TempDir(), t.TempDir()
	mk := func(p string) {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	wh := func(p string) {
		if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{top, mid, bot} {
		mk(filepath.Join(l, "merged"))
	}
	mk(filepath.Join(bot, "gone"))
	wh(filepath.Join(top, "gone"))
	mk(filepath.Join(top, "opq"))
	mk(filepath.Join(mid, "opq"))
	if err := unix.Lsetxattr(filepath.Join(top, "opq"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	mk(filepath.Join(mid, "cut"))
	wh(filepath.Join(bot, "cut"))
	mk(filepath.Join(top, "overfile"))
	if err := os.WriteFile(filepath.Join(mid, "overfile"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(top, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mk(filepath.Join(bot, "file"))
	tests := []struct {
		name     string
		wantHost string // "" when absent
		wantDirs []string
	}{
		{"merged", filepath.Join(top, "merged"), []string{filepath.Join(top, "merged"), filepath.Join(mid, "merged"), filepath.Join(bot, "merged")}},
		{"gone", "", nil},
		{"missing", "", nil},
		{"opq", filepath.Join(top, "opq"), []string{filepath.Join(top, "opq")}},
		{"cut", filepath.Join(mid, "cut"), []string{filepath.Join(mid, "cut")}},
		{"overfile", filepath.Join(top, "overfile"), []string{filepath.Join(top, "overfile")}},
		{"file", filepath.Join(top, "file"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			le, err := lookupLower([]string{top, mid, bot}, tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantHost == "" {
				if le != nil {
					t.Errorf("lookupLower = %+v, want absent", le)
				}
				return
			}
			if le == nil || le.host != tt.wantHost || strings.Join(le.dirs, ":") != strings.Join(tt.wantDirs, ":") {
				t.Errorf("lookupLower = %+v, want host %s dirs %v", le, tt.wantHost, tt.wantDirs)
			}
		})
	}
}

// TestStoresShareRoot opens two stores on one root, as two builder
// processes do: neither removes what the other is making, each sees what
// the other committed, and a name is committed once.
func TestStoresShareRoot(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	a, err := NewNamed(root, "native")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Prepare(ctx, "a-active", ""); err != nil {
		t.Fatal(err)
	}
	// A second process starting now recovers the root: a's active
	// snapshot belongs to a live process and stays.
	b, err := NewNamed(root, "native")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.Mounts(ctx, "a-active"); err != nil {
		t.Fatalf("a's active snapshot after b opened the root: %v", err)
	}
	if err := a.Commit(ctx, "shared", "a-active"); err != nil {
		t.Fatal(err)
	}
	// b sees a's commit and can build on it.
	if _, err := b.Stat(ctx, "shared"); err != nil {
		t.Fatalf("b does not see a's committed snapshot: %v", err)
	}
	if _, err := b.Prepare(ctx, "b-child", "shared"); err != nil {
		t.Fatalf("b building on a's snapshot: %v", err)
	}
	// The same name committed by both: the second one loses.
	if _, err := b.Prepare(ctx, "b-other", ""); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx, "shared", "b-other"); !errors.Is(err, ErrAlreadyExists) {
		t.Errorf("committing a name another store committed: %v, want ErrAlreadyExists", err)
	}
	// Ids are never reused, even after a removal: b's cached id of a
	// removed snapshot can never name another one.
	oldID := b.(*store).byName["b-other"].id
	if err := b.Remove(ctx, "b-other"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Prepare(ctx, "a-next", ""); err != nil {
		t.Fatal(err)
	}
	if id := a.(*store).byName["a-next"].id; id == oldID {
		t.Errorf("id %s reused", id)
	}
}

// TestRecoveryRemovesOnlyTheDead checks start-up recovery: an active
// snapshot of a dead process (a lease nobody holds), a snapshot without
// metadata and the children of a snapshot whose metadata is gone are
// removed; committed snapshots stay.
func TestRecoveryRemovesOnlyTheDead(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	sn, err := NewNamed(root, "native")
	if err != nil {
		t.Fatal(err)
	}
	commit := func(name, parent string) {
		t.Helper()
		if _, err := sn.Prepare(ctx, "k-"+name, parent); err != nil {
			t.Fatal(err)
		}
		if err := sn.Commit(ctx, name, "k-"+name); err != nil {
			t.Fatal(err)
		}
	}
	commit("base", "")
	commit("child", "base")
	commit("lost", "")
	commit("orphan", "lost")
	commit("orphan2", "orphan")
	if _, err := sn.Prepare(ctx, "dead-active", "base"); err != nil {
		t.Fatal(err)
	}
	st := sn.(*store)
	dead := st.byName["dead-active"]
	lost := st.byName["lost"]
	sn.Close()
	// The active snapshot's owner died: rewrite its lease to one nobody
	// holds. The metadata of "lost" is deleted.
	var m metaFile
	b, _ := os.ReadFile(filepath.Join(dead.dir, "meta.json"))
	b, _ = fsutil.Unseal(b)
	json.Unmarshal(b, &m)
	m.Owner = "p1x0123456789ab"
	b, _ = json.Marshal(m)
	os.WriteFile(filepath.Join(dead.dir, "meta.json"), fsutil.Seal(b), 0o600)
	os.Remove(filepath.Join(lost.dir, "meta.json"))

	sn, err = NewNamed(root, "native")
	if err != nil {
		t.Fatalf("reopening a damaged root: %v", err)
	}
	defer sn.Close()
	var names []string
	sn.Walk(ctx, func(in Info) error { names = append(names, in.Name); return nil })
	if got := strings.Join(names, ","); got != "base,child" {
		t.Errorf("after recovery: %s, want base,child", got)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "snapshots"))
	if len(ents) != 2 {
		t.Errorf("%d snapshot dirs left, want 2", len(ents))
	}
	if tr, _ := os.ReadDir(filepath.Join(root, "trash")); len(tr) != 0 {
		t.Errorf("trash not emptied: %d entries", len(tr))
	}
}
