package fileop

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mkTree creates entries under root. Each entry is one of
//
//	"path"            a file whose content is its path
//	"path=content"    a file with that content
//	"path/"           a directory
//	"path->target"    a symlink
//
// optionally followed by " 0755"-style octal mode.
func mkTree(t *testing.T, root string, entries ...string) {
	t.Helper()
	for _, e := range entries {
		mode := os.FileMode(0)
		if i := strings.LastIndex(e, " "); i > 0 {
			var m uint32
			if _, err := fmt.Sscanf(e[i+1:], "%o", &m); err == nil {
				mode = os.FileMode(m & 0o777)
				if m&0o4000 != 0 {
					mode |= os.ModeSetuid
				}
				if m&0o2000 != 0 {
					mode |= os.ModeSetgid
				}
				if m&0o1000 != 0 {
					mode |= os.ModeSticky
				}
				e = e[:i]
			}
		}
		switch {
		case strings.Contains(e, "->"):
			name, target, _ := strings.Cut(e, "->")
			p := filepath.Join(root, name)
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.Symlink(target, p))
			continue
		case strings.HasSuffix(e, "/"):
			p := filepath.Join(root, e)
			must(t, os.MkdirAll(p, 0o755))
			if mode != 0 {
				must(t, os.Chmod(p, mode))
			}
			continue
		}
		name, content, ok := strings.Cut(e, "=")
		if !ok {
			content = name
		}
		p := filepath.Join(root, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(content), 0o644))
		if mode != 0 {
			must(t, os.Chmod(p, mode))
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// describe lists the tree at root: "path f 0644 content", "path d 0755",
// "path l target"; with owners, " uid:gid" is appended.
func describe(t *testing.T, root string, owners bool) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		var s string
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			s = fmt.Sprintf("%s l %s", rel, target)
		case fi.IsDir():
			s = fmt.Sprintf("%s d %04o", rel, unixPerm(fi))
		default:
			dt, _ := os.ReadFile(p)
			s = fmt.Sprintf("%s f %04o %s", rel, unixPerm(fi), dt)
		}
		if owners {
			st := fi.Sys().(*syscall.Stat_t)
			s += fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func unixPerm(fi os.FileInfo) uint32 {
	return fi.Sys().(*syscall.Stat_t).Mode & 0o7777
}

func equalLists(a, b []string) bool {
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

// sentinel makes base/sentinel with a secret file and returns a check that
// it is untouched.
func sentinel(t *testing.T, base string) func() {
	t.Helper()
	s := filepath.Join(base, "sentinel")
	mkTree(t, s, "secret=top secret")
	old := time.Unix(1000, 0)
	must(t, os.Chtimes(filepath.Join(s, "secret"), old, old))
	before := describe(t, s, true)
	return func() {
		t.Helper()
		after := describe(t, s, true)
		if !equalLists(before, after) {
			t.Errorf("sentinel changed:\nbefore %v\nafter  %v", before, after)
		}
		fi, err := os.Stat(filepath.Join(s, "secret"))
		if err != nil || !fi.ModTime().Equal(old) {
			t.Errorf("sentinel secret touched: %v %v", fi, err)
		}
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}
