package fileop

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/builderdev/builder/llb"
	digest "github.com/opencontainers/go-digest"
)

func TestChecksum(t *testing.T) {
	srcTree := []string{"app/main.go=package main", "app/sub/x.txt=x", "app/link->main.go", "other.txt=other", "app/skip.log=log"}
	copyApp := dockerCopy("/dst/", "app")
	copyApp.ExcludePatterns = []string{"*.log"}
	tests := []struct {
		name   string
		local  bool
		change func(t *testing.T, root string)
		same   bool
	}{
		{"touch only", true, func(t *testing.T, root string) {
			tm := time.Now().Add(time.Hour)
			must(t, os.Chtimes(filepath.Join(root, "app/main.go"), tm, tm))
			must(t, os.Chtimes(filepath.Join(root, "app/sub"), tm, tm))
		}, true},
		{"file outside the sources", true, func(t *testing.T, root string) {
			must(t, os.WriteFile(filepath.Join(root, "other.txt"), []byte("changed"), 0o644))
			must(t, os.WriteFile(filepath.Join(root, "new.txt"), []byte("new"), 0o644))
		}, true},
		{"excluded file", true, func(t *testing.T, root string) {
			must(t, os.WriteFile(filepath.Join(root, "app/skip.log"), []byte("more log"), 0o644))
		}, true},
		{"dockerignored file", true, func(t *testing.T, root string) {
			must(t, os.WriteFile(filepath.Join(root, "app/sub/ignored.tmp"), []byte("tmp"), 0o644))
		}, true},
		{"content", true, func(t *testing.T, root string) {
			must(t, os.WriteFile(filepath.Join(root, "app/sub/x.txt"), []byte("y"), 0o644))
		}, false},
		{"same size content", true, func(t *testing.T, root string) {
			fi, _ := os.Stat(filepath.Join(root, "app/main.go"))
			must(t, os.WriteFile(filepath.Join(root, "app/main.go"), []byte("package mian"), 0o644))
			must(t, os.Chtimes(filepath.Join(root, "app/main.go"), fi.ModTime(), fi.ModTime()))
		}, false},
		{"mode", true, func(t *testing.T, root string) {
			must(t, os.Chmod(filepath.Join(root, "app/main.go"), 0o755))
		}, false},
		{"setuid", true, func(t *testing.T, root string) {
			must(t, os.Chmod(filepath.Join(root, "app/main.go"), 0o644|os.ModeSetuid))
		}, false},
		{"dir mode", true, func(t *testing.T, root string) {
			must(t, os.Chmod(filepath.Join(root, "app/sub"), 0o700))
		}, false},
		{"rename", true, func(t *testing.T, root string) {
			must(t, os.Rename(filepath.Join(root, "app/sub/x.txt"), filepath.Join(root, "app/sub/y.txt")))
		}, false},
		{"new file", true, func(t *testing.T, root string) {
			must(t, os.WriteFile(filepath.Join(root, "app/new"), nil, 0o644))
		}, false},
		{"symlink target", true, func(t *testing.T, root string) {
			must(t, os.Remove(filepath.Join(root, "app/link")))
			must(t, os.Symlink("sub/x.txt", filepath.Join(root, "app/link")))
		}, false},
		{"file becomes dir", true, func(t *testing.T, root string) {
			must(t, os.Remove(filepath.Join(root, "app/sub/x.txt")))
			must(t, os.Mkdir(filepath.Join(root, "app/sub/x.txt"), 0o755))
		}, false},
		{"owner of a local context does not count", true, func(t *testing.T, root string) {
			requireRoot(t)
			must(t, os.Lchown(filepath.Join(root, "app/main.go"), 12, 34))
		}, true},
		{"owner of a tree counts", false, func(t *testing.T, root string) {
			requireRoot(t)
			must(t, os.Lchown(filepath.Join(root, "app/main.go"), 12, 34))
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			mkTree(t, root, srcTree...)
			in := Input{Root: root, Excludes: []string{"**/*.tmp"}, Local: tc.local}
			hc := NewMemHasher()
			before, err := Checksum(context.Background(), in, &copyApp, hc)
			must(t, err)
			again, err := Checksum(context.Background(), in, &copyApp, hc)
			must(t, err)
			if before != again {
				t.Fatalf("checksum not stable: %s %s", before, again)
			}
			tc.change(t, root)
			after, err := Checksum(context.Background(), in, &copyApp, hc)
			must(t, err)
			if (before == after) != tc.same {
				t.Errorf("same = %v, want %v (%s, %s)", before == after, tc.same, before, after)
			}
			// A fresh hash cache gives the same answer as the warm one.
			fresh, err := Checksum(context.Background(), in, &copyApp, NewMemHasher())
			must(t, err)
			if fresh != after {
				t.Errorf("fresh cache: %s, warm cache: %s", fresh, after)
			}
		})
	}
}

func TestChecksumDoesNotRereadUnchangedFiles(t *testing.T) {
	root := t.TempDir()
	mkTree(t, root, "a=1", "b=2", "d/c=3")
	hc := NewMemHasher()
	c := dockerCopy("/", ".")
	_, err := Checksum(context.Background(), Input{Root: root}, &c, hc)
	must(t, err)
	if hc.Reads() != 3 {
		t.Fatalf("reads = %d, want 3", hc.Reads())
	}
	_, err = Checksum(context.Background(), Input{Root: root}, &c, hc)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(root, "b"), []byte("22"), 0o644))
	_, err = Checksum(context.Background(), Input{Root: root}, &c, hc)
	must(t, err)
	if hc.Reads() != 4 {
		t.Fatalf("reads = %d, want 4 (only the changed file re-read)", hc.Reads())
	}
}

func TestChecksumSelection(t *testing.T) {
	root := t.TempDir()
	mkTree(t, root, "a.txt=a", "b.txt=b", "c.go=c", "l->a.txt")
	in := Input{Root: root, Local: true}
	sum := func(c llb.Copy) string {
		t.Helper()
		d, err := Checksum(context.Background(), in, &c, NewMemHasher())
		must(t, err)
		return d.String()
	}
	all := sum(dockerCopy("/x/", "*.txt"))
	if all == sum(dockerCopy("/x/", "a.txt")) {
		t.Error("wildcard and single file have the same checksum")
	}
	if sum(dockerCopy("/x/", "l")) == sum(with(dockerCopy("/x/", "l"), func(c *llb.Copy) { c.FollowSymlinks = false })) {
		t.Error("followed and unfollowed symlink have the same checksum")
	}
	before := sum(dockerCopy("/x/", "*.txt"))
	must(t, os.WriteFile(filepath.Join(root, "c.go"), []byte("changed"), 0o644))
	if before != sum(dockerCopy("/x/", "*.txt")) {
		t.Error("a file outside the wildcard changed the checksum")
	}
	must(t, os.WriteFile(filepath.Join(root, "d.txt"), []byte("d"), 0o644))
	if before == sum(dockerCopy("/x/", "*.txt")) {
		t.Error("a new wildcard match did not change the checksum")
	}
	_, err := Checksum(context.Background(), in, &llb.Copy{SrcPaths: []string{"missing"}, Dest: "/"}, NewMemHasher())
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing source: %v", err)
	}
	_, err = Checksum(context.Background(), Input{Root: root, Excludes: []string{"a.txt"}}, &llb.Copy{SrcPaths: []string{"a.txt"}, Dest: "/"}, NewMemHasher())
	if err == nil || !strings.Contains(err.Error(), "excluded by .dockerignore") {
		t.Errorf("ignored source: %v", err)
	}
	// The per-Dockerfile ignore file is named as the input names it.
	_, err = Checksum(context.Background(), Input{Root: root, Excludes: []string{"a.txt"}, IgnoreFile: "sub/x.Dockerfile.dockerignore"}, &llb.Copy{SrcPaths: []string{"a.txt"}, Dest: "/"}, NewMemHasher())
	if err == nil || !strings.HasSuffix(err.Error(), "not found: excluded by sub/x.Dockerfile.dockerignore") {
		t.Errorf("source ignored by x.Dockerfile.dockerignore: %v", err)
	}
}

func TestTreeDigest(t *testing.T) {
	root := t.TempDir()
	mkTree(t, root, "a=1", "d/b=2", "node_modules/x=3")
	in := Input{Root: root, Excludes: []string{"node_modules"}, Local: true}
	d1, err := TreeDigest(context.Background(), in, NewMemHasher())
	must(t, err)
	must(t, os.WriteFile(filepath.Join(root, "node_modules/x"), []byte("changed"), 0o644))
	tm := time.Now().Add(time.Hour)
	must(t, os.Chtimes(filepath.Join(root, "a"), tm, tm))
	d2, err := TreeDigest(context.Background(), in, NewMemHasher())
	must(t, err)
	if d1 != d2 {
		t.Error("ignored change or touch changed the tree digest")
	}
	must(t, os.WriteFile(filepath.Join(root, "d/b"), []byte("22"), 0o644))
	d3, err := TreeDigest(context.Background(), in, NewMemHasher())
	must(t, err)
	if d3 == d2 {
		t.Error("content change did not change the tree digest")
	}
	empty, err := TreeDigest(context.Background(), Input{}, nil)
	must(t, err)
	if empty == d3 || empty == "" {
		t.Errorf("empty tree digest %s", empty)
	}
}

// deniedHasher fails on one file as the file hash cache does when it may
// not open it: with the open's *os.PathError, naming the host path.
type deniedHasher struct {
	Hasher
	denied string
}

func (h deniedHasher) Sum(p string, fi os.FileInfo) (digest.Digest, error) {
	if filepath.Base(p) == h.denied {
		return "", &os.PathError{Op: "open", Path: p, Err: syscall.EACCES}
	}
	return h.Hasher.Sum(p, fi)
}

// TestChecksumUnreadableFile: a file the builder may not read is named
// once, by its path in the context, never by its host path, whichever
// source names it (the file, its directory, the whole tree), for a local
// context (hashed on several goroutines) and a stage.
func TestChecksumUnreadableFile(t *testing.T) {
	root := t.TempDir()
	mkTree(t, root, "a=1", "d/secret=2")
	hc := deniedHasher{Hasher: NewMemHasher(), denied: "secret"}
	for _, local := range []bool{true, false} {
		in := Input{Root: root, Local: local}
		for _, src := range []string{"d/secret", "d", "."} {
			c := dockerCopy("/x/", src)
			_, err := Checksum(context.Background(), in, &c, hc)
			if err == nil || err.Error() != "open d/secret: permission denied" || !errors.Is(err, fs.ErrPermission) {
				t.Errorf("local %v, COPY %s: %v; want open d/secret: permission denied", local, src, err)
			}
		}
		_, err := TreeDigest(context.Background(), in, hc)
		if err == nil || err.Error() != "open d/secret: permission denied" {
			t.Errorf("local %v, tree digest: %v", local, err)
		}
	}
}
