package snapshot

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// craftTree makes the entries in spec under root, in order: "d/" is a
// directory, "d/+" an opaque directory, "w!" a whiteout (0/0 character
// device), "f=body" a file. Every entry gets the mtime stamp, so that equal
// specs give entries sameDirent finds equal.
func craftTree(t *testing.T, root string, stamp time.Time, spec ...string) {
	t.Helper()
	ts := []unix.Timespec{unix.NsecToTimespec(stamp.UnixNano()), unix.NsecToTimespec(stamp.UnixNano())}
	for _, s := range spec {
		var p string
		var err error
		mode := os.FileMode(0o644)
		switch {
		case strings.HasSuffix(s, "/+"):
			p, mode = filepath.Join(root, strings.TrimSuffix(s, "/+")), 0o755
			err = os.Mkdir(p, mode)
			if err == nil {
				err = unix.Lsetxattr(p, "trusted.overlay.opaque", []byte("y"), 0)
			}
		case strings.HasSuffix(s, "/"):
			p, mode = filepath.Join(root, s), 0o755
			err = os.Mkdir(p, mode)
		case strings.HasSuffix(s, "!"):
			p, mode = filepath.Join(root, strings.TrimSuffix(s, "!")), 0
			err = unix.Mknod(p, unix.S_IFCHR, 0)
		default:
			name, body, _ := strings.Cut(s, "=")
			p = filepath.Join(root, name)
			err = os.WriteFile(p, []byte(body), mode)
		}
		if err == nil {
			err = os.Chmod(p, mode) // regardless of the umask
		}
		if err != nil {
			t.Fatalf("crafting %s in %s: %v", s, root, err)
		}
	}
	// Times last: creating children changes their directory's mtime.
	for i := len(spec) - 1; i >= 0; i-- {
		name := strings.TrimRight(strings.SplitN(spec[i], "=", 2)[0], "/+!")
		p := filepath.Join(root, name)
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatalf("setting times of %s: %v", p, err)
		}
	}
}

// TestOverlayChanges runs the overlay differ on hand-made upper and lower
// dirs, for the upper-dir states a RUN step can leave that the
// conformance suite cannot produce through mounts.
func TestOverlayChanges(t *testing.T) {
	needRoot(t)
	old := time.Unix(1e9, 123)
	newer := time.Unix(2e9, 456)
	tests := []struct {
		name   string
		lowers [][]string // topmost first
		upper  []string
		stamp  time.Time // of the upper entries
		want   string
	}{
		{"whiteout of a name the lowers lack is dropped",
			[][]string{{"etc/", "etc/group=g"}},
			[]string{"etc/", "etc/ghost!", "etc/group!", "etc/aaa=x"}, newer,
			"etc/,etc/aaa,etc/.wh.group"},
		{"without lowers 0/0 devices are dropped", nil,
			[]string{"dev!", "f=f"}, newer, "f"},
		{"whiteout of a name a lower whiteout hides is dropped",
			[][]string{{"gone!"}, {"gone=g"}},
			[]string{"gone!"}, newer, ""},
		{"opaque dir over nothing is a plain new dir",
			[][]string{{"other=o"}},
			[]string{"n/+", "n/x=x"}, newer, "n/,n/x"},
		{"opaque dir over a file",
			[][]string{{"n=file"}},
			[]string{"n/+", "n/x=x"}, newer, "n/,n/x"},
		{"opaque dir over a merged dir: per-entry whiteouts by real name",
			[][]string{{"o/", "o/a=a", "o/gone!"}, {"o/", "o/gone=g", "o/b=b", "o/c/", "o/c/in=i"}},
			[]string{"o/+", "o/b=b2", "o/stale!"}, newer,
			"o/,o/.wh.a,o/b,o/.wh.c"},
		{"opaque dir recreated unchanged",
			[][]string{{"o/", "o/a=a"}},
			[]string{"o/+", "o/a=a"}, old, ""},
		{"copied-up dir and file unchanged",
			[][]string{{"d/", "d/f=f"}},
			[]string{"d/", "d/f=f"}, old, ""},
		{"copied-up file with a new mtime",
			[][]string{{"d/", "d/f=f"}},
			[]string{"d/", "d/f=f"}, newer, "d/,d/f"},
		{"directory mtime alone is no change",
			[][]string{{"d/", "d/f=f"}},
			[]string{"d/"}, newer, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lowers []string
			for _, spec := range tt.lowers {
				dir := t.TempDir()
				craftTree(t, dir, old, spec...)
				lowers = append(lowers, dir)
			}
			upper := t.TempDir()
			craftTree(t, upper, tt.stamp, tt.upper...)
			var buf bytes.Buffer
			lw := newLayerWriter(&buf)
			if err := overlayChanges(context.Background(), lw, upper, "", baseDir{dirs: lowers, overlay: true}); err != nil {
				t.Fatal(err)
			}
			if err := lw.close(); err != nil {
				t.Fatal(err)
			}
			if got := tarNames(t, buf.Bytes()); got != tt.want {
				t.Errorf("entries = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSameDirent(t *testing.T) {
	dir := t.TempDir()
	trunc := time.Unix(1e9, 0)
	nano := time.Unix(1e9, 5)
	mk := func(name, body string, mtime time.Time) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mkdir := func(name string, mode os.FileMode, mtime time.Time) string {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return p
	}
	link := func(name, target string, mtime time.Time) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		ts := unix.NsecToTimespec(mtime.UnixNano())
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"truncated mtimes, same content", mk("t1", "abc", trunc), mk("t2", "abc", trunc), true},
		{"truncated mtimes, other content", mk("t3", "abc", trunc), mk("t4", "abd", trunc), false},
		{"nanosecond mtimes equal, other content", mk("n1", "abc", nano), mk("n2", "abd", nano), true},
		{"one truncated mtime", mk("n3", "abc", nano), mk("n4", "abc", trunc), false},
		{"other seconds", mk("s1", "abc", trunc), mk("s2", "abc", trunc.Add(time.Second)), false},
		{"other size", mk("z1", "abc", nano), mk("z2", "ab", nano), false},
		{"empty files, truncated", mk("e1", "", trunc), mk("e2", "", trunc), true},
		{"dirs with other mtimes", mkdir("d1", 0o755, trunc), mkdir("d2", 0o755, nano.Add(time.Hour)), true},
		{"dirs with other modes", mkdir("d3", 0o755, trunc), mkdir("d4", 0o700, trunc), false},
		{"symlinks, truncated, same target", link("l1", "x", trunc), link("l2", "x", trunc), true},
		{"symlinks, truncated, other target", link("l3", "x", trunc), link("l4", "y", trunc), false},
		{"file and dir", mk("fd1", "", trunc), mkdir("fd2", 0o644, trunc), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var as, bs unix.Stat_t
			if err := unix.Lstat(tt.a, &as); err != nil {
				t.Fatal(err)
			}
			if err := unix.Lstat(tt.b, &bs); err != nil {
				t.Fatal(err)
			}
			got, err := sameDirent(tt.a, tt.b, &as, &bs)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("sameDirent(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
	// security.capability counts, other xattrs do not (needs a
	// filesystem with user xattrs and root for security.*).
	if os.Geteuid() != 0 {
		return
	}
	a, b := mk("c1", "abc", nano), mk("c2", "abc", nano)
	if err := unix.Lsetxattr(b, "user.note", []byte("n"), 0); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	var as, bs unix.Stat_t
	unix.Lstat(a, &as)
	unix.Lstat(b, &bs)
	if same, err := sameDirent(a, b, &as, &bs); err != nil || !same {
		t.Errorf("a user xattr made files differ: %v, %v", same, err)
	}
	if err := unix.Lsetxattr(b, "security.capability", []byte{0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0); err != nil {
		t.Fatal(err)
	}
	if same, err := sameDirent(a, b, &as, &bs); err != nil || same {
		t.Errorf("a capability did not make files differ: %v, %v", same, err)
	}
}
