package fileop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/builderdev/builder/llb"
)

// describeTimes is describe with the mtime of every entry but the root's
// and the top-level directories' (made at an unpredictable time).
func describeTimes(t *testing.T, root, top string) []string {
	t.Helper()
	out := describe(t, root, true)
	var times []string
	must(t, filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root || p == filepath.Join(root, top) {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if fi.IsDir() && filepath.Dir(rel) == "." {
			return nil
		}
		times = append(times, fmt.Sprintf("%s mtime %d", rel, fi.ModTime().UnixNano()))
		return nil
	}))
	sort.Strings(times)
	return append(out, times...)
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	must(t, err)
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestCopyReuseMatchesFreshCopy: a copy that starts from a clone of the
// previous result makes the same tree as a fresh copy, after every kind of
// change to the source, and reuses (hard-links) exactly the unchanged
// files.
func TestCopyReuseMatchesFreshCopy(t *testing.T) {
	requireRoot(t)
	old := racyWindow
	racyWindow = 0
	defer func() { racyWindow = old }()

	base := t.TempDir()
	src := filepath.Join(base, "src")
	mkTree(t, src, "keep=same", "sub/keep2=same too", "sub/change=old", "sub/mode=m",
		"sub/touch=t", "gone=bye", "gonedir/x", "becomesdir=f", "becomesfile/y",
		"sub/link->keep", "sub/hard=h", "deep/a/b/c=c")
	must(t, os.Link(filepath.Join(src, "sub/hard"), filepath.Join(src, "sub/hard2")))
	c := dockerCopy("/app", ".")
	op := llb.FileOp{Actions: []llb.FileAction{{Copy: &c}}}
	in := []Input{{Root: src, Local: true}}
	time.Sleep(20 * time.Millisecond) // the sources are older than the copy

	prev := filepath.Join(base, "prev")
	mkTree(t, prev, "etc/")
	reusable, err := ApplyReuse(context.Background(), prev, in, op, nil)
	must(t, err)
	if !reusable {
		t.Fatal("a copy of a context's contents onto a new directory is reusable")
	}
	time.Sleep(20 * time.Millisecond)

	// Change the source in every way.
	must(t, os.WriteFile(filepath.Join(src, "sub/change"), []byte("new content"), 0o644))
	must(t, os.Chmod(filepath.Join(src, "sub/mode"), 0o600))
	later := time.Now().Add(-time.Hour)
	must(t, os.Chtimes(filepath.Join(src, "sub/touch"), later, later))
	must(t, os.Remove(filepath.Join(src, "gone")))
	must(t, os.RemoveAll(filepath.Join(src, "gonedir")))
	must(t, os.Remove(filepath.Join(src, "becomesdir")))
	mkTree(t, src, "becomesdir/z", "added=new file", "sub/newdir/n")
	must(t, os.RemoveAll(filepath.Join(src, "becomesfile")))
	mkTree(t, src, "becomesfile=now a file")

	next := filepath.Join(base, "next")
	must(t, os.Mkdir(next, 0o755))
	reuse, err := CloneTree(context.Background(), prev, next)
	must(t, err)
	reusable, err = ApplyReuse(context.Background(), next, in, op, reuse)
	must(t, err)
	if !reusable {
		t.Error("the reusing copy is reusable again")
	}
	fresh := filepath.Join(base, "fresh")
	mkTree(t, fresh, "etc/")
	must(t, Apply(context.Background(), fresh, in, op))

	got, want := describeTimes(t, next, "app"), describeTimes(t, fresh, "app")
	if !equalLists(got, want) {
		t.Errorf("reused copy differs from a fresh one:\ngot  %q\nwant %q", got, want)
	}
	for name, reused := range map[string]bool{
		"app/keep": true, "app/sub/keep2": true, "app/deep/a/b/c": true,
		"app/sub/change": false, "app/sub/mode": false, "app/sub/touch": false,
	} {
		same := inode(t, filepath.Join(next, name)) == inode(t, filepath.Join(prev, name))
		if same != reused {
			t.Errorf("%s: reused %v, want %v", name, same, reused)
		}
	}
	h1, h2 := inode(t, filepath.Join(next, "app/sub/hard")), inode(t, filepath.Join(next, "app/sub/hard2"))
	if h1 != h2 {
		t.Error("hard links of the source are not hard links in the reused copy")
	}
}

// TestCopyReuseNotForExistingDest: a copy into a directory the parent
// already has is not reusable (the clone could not tell its entries from
// the parent's).
func TestCopyReuseNotForExistingDest(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
	mkTree(t, src, "a")
	mkTree(t, dst, "app/old")
	c := dockerCopy("/app", ".")
	reusable, err := ApplyReuse(context.Background(), dst, []Input{{Root: src, Local: true}}, llb.FileOp{Actions: []llb.FileAction{{Copy: &c}}}, nil)
	must(t, err)
	if reusable {
		t.Error("a copy into an existing directory must not be reusable")
	}
	c2 := dockerCopy("/new/", "a")
	reusable, err = ApplyReuse(context.Background(), dst, []Input{{Root: src, Local: true}}, llb.FileOp{Actions: []llb.FileAction{{Copy: &c2}}}, nil)
	must(t, err)
	if reusable {
		t.Error("a copy of a single file must not be reusable")
	}
}
