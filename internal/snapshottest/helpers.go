package snapshottest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/snapshot"
	"golang.org/x/sys/unix"
)

// withTree mounts the active snapshot or view key and runs fn on its root
// inside WithMounts (fn must not call t.Fatal: it returns errors instead).
func withTree(t *testing.T, sn snapshot.Snapshotter, key string, fn func(root string) error) {
	t.Helper()
	ctx := context.Background()
	ms, err := sn.Mounts(ctx, key)
	if err != nil {
		t.Fatalf("Mounts(%q): %v", key, err)
	}
	if err := snapshot.WithMounts(ctx, [][]snapshot.Mount{ms}, func(roots []string) error {
		return fn(roots[0])
	}); err != nil {
		t.Fatalf("working in snapshot %q: %v", key, err)
	}
}

// commitWith prepares name's active snapshot on parent, runs fn in it and
// commits it as name.
func commitWith(t *testing.T, sn snapshot.Snapshotter, name, parent string, fn func(root string) error) {
	t.Helper()
	ctx := context.Background()
	key := name + "-active"
	if _, err := sn.Prepare(ctx, key, parent); err != nil {
		t.Fatalf("Prepare(%q, %q): %v", key, parent, err)
	}
	if fn != nil {
		withTree(t, sn, key, fn)
	}
	if err := sn.Commit(ctx, name, key); err != nil {
		t.Fatalf("Commit(%q, %q): %v", name, key, err)
	}
}

// applyCommit applies layer onto a new snapshot on parent and commits it.
func applyCommit(t *testing.T, sn snapshot.Snapshotter, name, parent string, layer []byte) {
	t.Helper()
	ctx := context.Background()
	key := name + "-active"
	if _, err := sn.Prepare(ctx, key, parent); err != nil {
		t.Fatalf("Prepare(%q, %q): %v", key, parent, err)
	}
	if err := sn.Apply(ctx, key, bytes.NewReader(layer)); err != nil {
		t.Fatalf("Apply to %q: %v", key, err)
	}
	if err := sn.Commit(ctx, name, key); err != nil {
		t.Fatalf("Commit(%q, %q): %v", name, key, err)
	}
}

func diff(t *testing.T, sn snapshot.Snapshotter, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := sn.Diff(context.Background(), name, &buf); err != nil {
		t.Fatalf("Diff(%q): %v", name, err)
	}
	return buf.Bytes()
}

// entries renders a layer as one line per entry (without mtimes unless
// withTime).
func entries(t *testing.T, layer []byte, withTime bool) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading layer: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading layer entry %s: %v", h.Name, err)
		}
		out = append(out, entryLine(h, body, withTime))
	}
}

func entryLine(h *tar.Header, body []byte, withTime bool) string {
	s := fmt.Sprintf("%s %c %04o %d:%d", h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid)
	switch h.Typeflag {
	case tar.TypeReg:
		s += fmt.Sprintf(" %q", body)
	case tar.TypeSymlink, tar.TypeLink:
		s += " -> " + h.Linkname
	case tar.TypeChar, tar.TypeBlock:
		s += fmt.Sprintf(" %d,%d", h.Devmajor, h.Devminor)
	}
	var xs []string
	for k, v := range h.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			xs = append(xs, fmt.Sprintf("%s=%q", x, v))
		}
	}
	sort.Strings(xs)
	if len(xs) > 0 {
		s += " [" + strings.Join(xs, " ") + "]"
	}
	if h.Uname != "" || h.Gname != "" {
		s += " uname=" + h.Uname + " gname=" + h.Gname
	}
	if withTime {
		s += " " + h.ModTime.UTC().Format(time.RFC3339Nano)
	}
	return s
}

// tarEntry is one entry of a crafted layer.
type tarEntry struct {
	name, link string
	typ        byte
	mode       int64
	uid, gid   int
	body       string
	major      int64
	minor      int64
	xattrs     map[string]string
	mtime      time.Time
}

var epoch = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

func makeTar(t *testing.T, es ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		mt := e.mtime
		if mt.IsZero() {
			mt = epoch
		}
		mode := e.mode
		if mode == 0 && !strings.Contains(e.name, ".wh.") {
			mode = 0o644
			if e.typ == tar.TypeDir {
				mode = 0o755
			}
		}
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: mode,
			Uid: e.uid, Gid: e.gid, ModTime: mt, Devmajor: e.major, Devminor: e.minor}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("crafting tar entry %s: %v", e.name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func dirE(name string) tarEntry        { return tarEntry{name: name, typ: tar.TypeDir} }
func fileE(name, body string) tarEntry { return tarEntry{name: name, typ: tar.TypeReg, body: body} }
func symE(name, target string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}
func linkE(name, target string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeLink, link: target}
}

// File helpers for fn bodies; they return errors so they can run inside
// WithMounts.

func writeFile(p, body string, mode os.FileMode) error {
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

func mkdir(p string) error {
	if err := os.Mkdir(p, 0o755); err != nil {
		return err
	}
	return os.Chmod(p, 0o755)
}

func all(errs ...error) error { return errors.Join(errs...) }

// keepTimes runs fn and then restores the access and modification times
// p had before, as a sandbox does after removing its mount-point stubs.
func keepTimes(p string, fn func() error) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return fmt.Errorf("lstat %s: %w", p, err)
	}
	if err := fn(); err != nil {
		return err
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("restoring times of %s: %w", p, err)
	}
	return nil
}

// treeLines describes a tree: one line per path with type, mode, owners,
// size, content, link target, device, xattrs, hard-link group and (for
// non-directories) the mtime in seconds.
func treeLines(root string) ([]string, error) {
	var out []string
	groups := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		typ := st.Mode & unix.S_IFMT
		s := fmt.Sprintf("%s %o %04o %d:%d", rel, typ>>12, st.Mode&0o7777, st.Uid, st.Gid)
		switch typ {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s += fmt.Sprintf(" %q", b)
		case unix.S_IFLNK:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			s += " -> " + l
		case unix.S_IFCHR, unix.S_IFBLK:
			s += fmt.Sprintf(" %d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		if typ != unix.S_IFDIR {
			// Layers carry mtimes rounded to whole seconds.
			s += fmt.Sprintf(" t=%d", time.Unix(st.Mtim.Sec, st.Mtim.Nsec).Round(time.Second).Unix())
			if st.Nlink > 1 {
				if g, ok := groups[st.Ino]; ok {
					s += " linked-to=" + g
				} else {
					groups[st.Ino] = rel
				}
			}
		}
		xs, err := xattrLines(p)
		if err != nil {
			return err
		}
		if len(xs) > 0 {
			s += " [" + strings.Join(xs, " ") + "]"
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

func xattrLines(p string) ([]string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, k := range strings.Split(string(buf[:n]), "\x00") {
		if k == "" || strings.HasPrefix(k, "trusted.overlay.") {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, k, v)
		if err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("%s=%q", k, v[:m]))
	}
	sort.Strings(out)
	return out, nil
}

// viewLines returns treeLines of committed snapshot name through a view.
func viewLines(t *testing.T, sn snapshot.Snapshotter, name string) []string {
	t.Helper()
	ctx := context.Background()
	key := "view-of-" + name
	if _, err := sn.View(ctx, key, name); err != nil {
		t.Fatalf("View(%q): %v", name, err)
	}
	defer func() {
		if err := sn.Remove(ctx, key); err != nil {
			t.Errorf("Remove(%q): %v", key, err)
		}
	}()
	var lines []string
	withTree(t, sn, key, func(root string) error {
		var err error
		lines, err = treeLines(root)
		return err
	})
	return lines
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
