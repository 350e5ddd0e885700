package fileop

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/builderdev/builder/llb"
)

// dockerCopy is the Copy that a Dockerfile COPY makes of a local source.
func dockerCopy(dest string, srcs ...string) llb.Copy {
	return llb.Copy{
		SrcPaths: srcs, Dest: dest, FollowSymlinks: true, DirContentsOnly: true,
		AllowWildcard: true, AllowEmptyWildcard: true, CreateDestPath: true,
	}
}

func with(c llb.Copy, f func(*llb.Copy)) llb.Copy {
	f(&c)
	return c
}

func TestCopy(t *testing.T) {
	tests := []struct {
		name     string
		src      []string
		dst      []string
		excludes []string
		copy     llb.Copy
		want     []string
		wantErr  string
	}{
		{
			name: "file into dir with slash",
			src:  []string{"a.txt"},
			copy: dockerCopy("/app/", "a.txt"),
			want: []string{"app d 0755", "app/a.txt f 0644 a.txt"},
		},
		{
			name: "file to new name",
			src:  []string{"a.txt"},
			copy: dockerCopy("/app/b.txt", "/a.txt"),
			want: []string{"app d 0755", "app/b.txt f 0644 a.txt"},
		},
		{
			name: "file into existing dir without slash",
			src:  []string{"a.txt"},
			dst:  []string{"app/"},
			copy: dockerCopy("/app", "a.txt"),
			want: []string{"app d 0755", "app/a.txt f 0644 a.txt"},
		},
		{
			name: "file replaces file",
			src:  []string{"a.txt=new"},
			dst:  []string{"a.txt=old"},
			copy: dockerCopy("/a.txt", "a.txt"),
			want: []string{"a.txt f 0644 new"},
		},
		{
			name: "dir contents only",
			src:  []string{"dir/x", "dir/sub/y"},
			copy: dockerCopy("/out", "dir"),
			want: []string{"out d 0755", "out/sub d 0755", "out/sub/y f 0644 dir/sub/y", "out/x f 0644 dir/x"},
		},
		{
			name: "dir itself into existing dir",
			src:  []string{"dir/ 0750", "dir/x"},
			dst:  []string{"out/"},
			copy: with(dockerCopy("/out", "dir"), func(c *llb.Copy) { c.DirContentsOnly = false }),
			want: []string{"out d 0755", "out/dir d 0750", "out/dir/x f 0644 dir/x"},
		},
		{
			name: "root of the source",
			src:  []string{"a", "d/b"},
			copy: dockerCopy("/", "."),
			want: []string{"a f 0644 a", "d d 0755", "d/b f 0644 d/b"},
		},
		{
			name: "wildcards",
			src:  []string{"a.txt", "b.txt", "c.go", "d/e.txt"},
			copy: dockerCopy("/out/", "*.txt"),
			want: []string{"out d 0755", "out/a.txt f 0644 a.txt", "out/b.txt f 0644 b.txt"},
		},
		{
			name: "wildcard in dir component and class",
			src:  []string{"d1/a.txt", "d2/a.txt", "d3/a.txt", "x/a.txt"},
			copy: dockerCopy("/out/", "d[12]/?.txt"),
			want: []string{"out d 0755", "out/a.txt f 0644 d2/a.txt"},
		},
		{
			name: "wildcard matching dirs copies their contents",
			src:  []string{"dir1/a", "dir2/b"},
			copy: dockerCopy("/out/", "dir*"),
			want: []string{"out d 0755", "out/a f 0644 dir1/a", "out/b f 0644 dir2/b"},
		},
		{
			name: "empty wildcard allowed",
			src:  []string{"a"},
			copy: dockerCopy("/out/", "*.none"),
			want: []string{},
		},
		{
			name:    "empty wildcard not allowed",
			src:     []string{"a"},
			copy:    with(dockerCopy("/out/", "*.none"), func(c *llb.Copy) { c.AllowEmptyWildcard = false }),
			wantErr: `"*.none": no files match the pattern: not found`,
		},
		{
			name:    "missing source",
			src:     []string{"a"},
			copy:    dockerCopy("/out/", "nope"),
			wantErr: `source "nope": not found`,
		},
		{
			name:    "several sources need a dir",
			src:     []string{"a", "b"},
			copy:    dockerCopy("/out", "a", "b"),
			wantErr: "When using COPY with more than one source file, the destination must be a directory and end with a /",
		},
		{
			// BuildKit copies each match in turn: the last file wins.
			name: "wildcard with several file matches to a file",
			src:  []string{"a1", "a2"},
			copy: dockerCopy("/out", "a*"),
			want: []string{"out f 0644 a2"},
		},
		{
			// ... and merges directories (issue 10 #6).
			name: "wildcard with several dir matches merges them",
			src:  []string{"dir1/a", "dir2/b", "dir2/sub/c"},
			copy: dockerCopy("/out", "dir*"),
			want: []string{"out d 0755", "out/a f 0644 dir1/a", "out/b f 0644 dir2/b", "out/sub d 0755", "out/sub/c f 0644 dir2/sub/c"},
		},
		{
			name: "several sources into existing dir",
			src:  []string{"a", "b"},
			dst:  []string{"out/"},
			copy: dockerCopy("/out", "a", "b"),
			want: []string{"out d 0755", "out/a f 0644 a", "out/b f 0644 b"},
		},
		{
			name: "followed symlink source keeps its name",
			src:  []string{"real=data", "link->real"},
			copy: dockerCopy("/out/", "link"),
			want: []string{"out d 0755", "out/link f 0644 data"},
		},
		{
			name: "unfollowed symlink source is copied as a link",
			src:  []string{"real=data", "link->real"},
			copy: with(dockerCopy("/out/", "link"), func(c *llb.Copy) { c.FollowSymlinks = false }),
			want: []string{"out d 0755", "out/link l real"},
		},
		{
			name: "symlinks inside dirs stay symlinks",
			src:  []string{"d/real=x", "d/link->real", "d/abs->/etc/passwd"},
			copy: dockerCopy("/out/", "d"),
			want: []string{"out d 0755", "out/abs l /etc/passwd", "out/link l real", "out/real f 0644 x"},
		},
		{
			name:    "source symlink escaping the root is confined",
			src:     []string{"esc->../../sentinel/secret"},
			copy:    dockerCopy("/out/", "esc"),
			wantErr: `source "esc": not found`,
		},
		{
			name:    "dotdot source never leaves the root",
			src:     []string{"a"},
			copy:    dockerCopy("/out/", "../sentinel/secret"),
			wantErr: `not found`,
		},
		{
			name: "absolute symlink source resolves in the root",
			src:  []string{"etc/passwd=inside", "abs->/etc/passwd"},
			copy: dockerCopy("/out/", "abs"),
			want: []string{"out d 0755", "out/abs f 0644 inside"},
		},
		{
			name: "dest symlink to / lands in the root",
			src:  []string{"a"},
			dst:  []string{"link->/"},
			copy: dockerCopy("/link/", "a"),
			want: []string{"a f 0644 a", "link l /"},
		},
		{
			name: "dest symlink escaping is confined",
			src:  []string{"a"},
			dst:  []string{"evil->/../../../sentinel"},
			copy: dockerCopy("/evil/", "a"),
			want: []string{"evil l /../../../sentinel", "sentinel d 0755", "sentinel/a f 0644 a"},
		},
		{
			name: "dest relative symlink escaping is confined",
			src:  []string{"a"},
			dst:  []string{"evil->../sentinel/secret"},
			copy: dockerCopy("/evil", "a"),
			want: []string{"evil l ../sentinel/secret", "sentinel d 0755", "sentinel/secret f 0644 a"},
		},
		{
			name:    "symlinked subdir in the dest is not written through",
			src:     []string{"d/sub/x"},
			dst:     []string{"out/sub->../../sentinel"},
			copy:    dockerCopy("/out/", "d"),
			wantErr: "cannot copy to non-directory: /out/sub",
		},
		{
			name: "file replaces a symlink in the dest",
			src:  []string{"secret=mine"},
			dst:  []string{"out/secret->../../sentinel/secret"},
			copy: dockerCopy("/out/", "secret"),
			want: []string{"out d 0755", "out/secret f 0644 mine"},
		},
		{
			name: "file into a dir named like the dest",
			src:  []string{"x"},
			dst:  []string{"out/x/"},
			copy: dockerCopy("/out/x", "x"),
			want: []string{"out d 0755", "out/x d 0755", "out/x/x f 0644 x"},
		},
		{
			name:    "file does not replace a dir",
			src:     []string{"d/x"},
			dst:     []string{"out/x/"},
			copy:    dockerCopy("/out/", "d"),
			wantErr: "cannot replace directory /out/x with a file",
		},
		{
			name: "exclude patterns relative to the source",
			src:  []string{"d/a.txt", "d/b.md", "d/s/c.txt", "d/s/keep.txt"},
			copy: with(dockerCopy("/out/", "d"), func(c *llb.Copy) {
				c.ExcludePatterns = []string{"**/*.txt", "!s/keep.txt"}
			}),
			want: []string{"out d 0755", "out/b.md f 0644 d/b.md", "out/s d 0755", "out/s/keep.txt f 0644 d/s/keep.txt"},
		},
		{
			name: "exclude drops wildcard-matched files",
			src:  []string{"home.txt", "home.md"},
			copy: with(dockerCopy("/out/", "hom*"), func(c *llb.Copy) { c.ExcludePatterns = []string{"*.txt"} }),
			want: []string{"out d 0755", "out/home.md f 0644 home.md"},
		},
		{
			name:     "dockerignore hides paths",
			src:      []string{"a", "secret.key", "node_modules/x", "d/y.log", "d/z"},
			excludes: []string{"*.key", "node_modules", "**/*.log"},
			copy:     dockerCopy("/out/", "."),
			want:     []string{"out d 0755", "out/a f 0644 a", "out/d d 0755", "out/d/z f 0644 d/z"},
		},
		{
			name:     "dockerignore exceptions re-include",
			src:      []string{"docs/a.md", "docs/b.txt", "docs/sub/README.md"},
			excludes: []string{"docs", "!docs/**/*.md"},
			copy:     dockerCopy("/out/", "docs"),
			want:     []string{"out d 0755", "out/a.md f 0644 docs/a.md", "out/sub d 0755", "out/sub/README.md f 0644 docs/sub/README.md"},
		},
		{
			name:     "explicit source excluded by dockerignore",
			src:      []string{"secret.key"},
			excludes: []string{"*.key"},
			copy:     dockerCopy("/out/", "secret.key"),
			wantErr:  "excluded by .dockerignore",
		},
		{
			name:     "wildcard skips dockerignored files",
			src:      []string{"a.key", "b.key"},
			excludes: []string{"a.key"},
			copy:     dockerCopy("/out/", "*.key"),
			want:     []string{"out d 0755", "out/b.key f 0644 b.key"},
		},
		{
			name:    "no dest parent without CreateDestPath",
			src:     []string{"a"},
			copy:    with(dockerCopy("/no/such/a", "a"), func(c *llb.Copy) { c.CreateDestPath = false }),
			wantErr: "failed to stat parent of /no/such/a",
		},
		{
			name: "parents keep the relative dirs",
			src:  []string{"x/y/a.go", "x/z/b.go", "x/z/c.txt"},
			copy: with(dockerCopy("/out/", "x/*/*.go"), func(c *llb.Copy) { c.Parents = true }),
			want: []string{"out d 0755", "out/x d 0755", "out/x/y d 0755", "out/x/y/a.go f 0644 x/y/a.go", "out/x/z d 0755", "out/x/z/b.go f 0644 x/z/b.go"},
		},
		{
			name: "parents with a pivot",
			src:  []string{"x/y/a.go", "x/y/d/b"},
			copy: with(dockerCopy("/out/", "x/./y/a.go", "x/./y/d"), func(c *llb.Copy) { c.Parents = true }),
			want: []string{"out d 0755", "out/y d 0755", "out/y/a.go f 0644 x/y/a.go", "out/y/d d 0755", "out/y/d/b f 0644 x/y/d/b"},
		},
		{
			// The destination dir the copy creates takes the mode too
			// (BuildKit's testCopyChmod, issue 10 #7).
			name: "octal chmod applies to files and dirs",
			src:  []string{"d/a 0600", "d/s/"},
			copy: with(dockerCopy("/out/", "d"), func(c *llb.Copy) { c.Chmod = "0751" }),
			want: []string{"out d 0751", "out/a f 0751 d/a", "out/s d 0751"},
		},
		{
			name: "chmod applies to created parents",
			src:  []string{"foo 0600"},
			copy: with(dockerCopy("/parent/sub/foo", "foo"), func(c *llb.Copy) { c.Chmod = "777" }),
			want: []string{"parent d 0777", "parent/sub d 0777", "parent/sub/foo f 0777 foo"},
		},
		{
			name: "a copied dir's new destination takes --chmod, not the source mode",
			src:  []string{"tree/ 0700", "tree/f 0600"},
			copy: with(dockerCopy("/tree", "tree"), func(c *llb.Copy) { c.Chmod = "640" }),
			want: []string{"tree d 0640", "tree/f f 0640 tree/f"},
		},
		{
			name: "a copied dir's new destination is 0755, not the source mode",
			src:  []string{"tree/ 0700", "tree/f 0600"},
			copy: dockerCopy("/tree", "tree"),
			want: []string{"tree d 0755", "tree/f f 0600 tree/f"},
		},
		{
			name: "symbolic chmod",
			src:  []string{"d/a 0600", "d/x 0700", "d/s/ 0700"},
			copy: with(dockerCopy("/out/", "d"), func(c *llb.Copy) { c.Chmod = "u=rwX,go=rX" }),
			want: []string{"out d 0755", "out/a f 0644 d/a", "out/s d 0755", "out/x f 0755 d/x"},
		},
		{
			name: "modes and special bits kept",
			src:  []string{"d/suid 4755", "d/sgid/ 2775", "d/sticky/ 1777"},
			copy: dockerCopy("/out/", "d"),
			want: []string{"out d 0755", "out/sgid d 2775", "out/sticky d 1777", "out/suid f 4755 d/suid"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
			must(t, os.Mkdir(src, 0o755))
			must(t, os.Mkdir(dst, 0o755))
			check := sentinel(t, base)
			mkTree(t, src, tc.src...)
			mkTree(t, dst, tc.dst...)
			c := tc.copy
			err := Apply(context.Background(), dst, []Input{{Root: src, Excludes: tc.excludes, Local: true}},
				llb.FileOp{Base: 0, Actions: []llb.FileAction{{Copy: &c}}})
			check()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(t, dst, false); !equalLists(got, tc.want) {
				t.Errorf("dest:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestCopyNotFoundIsSentinel(t *testing.T) {
	base := t.TempDir()
	c := dockerCopy("/", "missing")
	err := Apply(context.Background(), base, []Input{{Root: base}}, llb.FileOp{Actions: []llb.FileAction{{Copy: &c}}})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestCopyPreservesTimesXattrsHardlinks(t *testing.T) {
	base := t.TempDir()
	src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
	mkTree(t, src, "d/a=hello", "d/sub/b")
	must(t, os.Mkdir(dst, 0o755))
	must(t, os.Link(filepath.Join(src, "d/a"), filepath.Join(src, "d/sub/hard")))
	xattrOK := syscall.Setxattr(filepath.Join(src, "d/a"), "user.test", []byte("v"), 0) == nil
	old := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
	for _, p := range []string{"d/a", "d/sub/b", "d/sub", "d"} {
		must(t, os.Chtimes(filepath.Join(src, p), old, old))
	}
	c := dockerCopy("/out/", "d")
	must(t, Apply(context.Background(), dst, []Input{{Root: src}}, llb.FileOp{Actions: []llb.FileAction{{Copy: &c}}}))
	for _, p := range []string{"out/a", "out/sub/b", "out/sub"} {
		fi, err := os.Lstat(filepath.Join(dst, p))
		must(t, err)
		if !fi.ModTime().Equal(old) {
			t.Errorf("%s mtime = %v, want %v", p, fi.ModTime(), old)
		}
	}
	a, err := os.Stat(filepath.Join(dst, "out/a"))
	must(t, err)
	h, err := os.Stat(filepath.Join(dst, "out/sub/hard"))
	must(t, err)
	if !os.SameFile(a, h) {
		t.Error("hard link not preserved")
	}
	if xattrOK {
		buf := make([]byte, 16)
		n, err := syscall.Getxattr(filepath.Join(dst, "out/a"), "user.test", buf)
		if err != nil || string(buf[:n]) != "v" {
			t.Errorf("xattr not copied: %q %v", buf[:n], err)
		}
	}
}

func TestCopyOwnership(t *testing.T) {
	requireRoot(t)
	passwd := "etc/passwd=root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n"
	group := "etc/group=root:x:0:\nstaff:x:50:\n"
	tests := []struct {
		name    string
		local   bool
		chown   *llb.Chown
		want    []string
		wantErr string
	}{
		{"local defaults to root", true, nil, []string{"out d 0755 0:0", "out/d d 0755 0:0", "out/d/f f 0644 d/f 0:0"}, ""},
		{"tree keeps owners", false, nil, []string{"out d 0755 0:0", "out/d d 0755 7:8", "out/d/f f 0644 d/f 7:8"}, ""},
		{"numeric user is also the group", true, &llb.Chown{User: "42"}, []string{"out d 0755 42:42", "out/d d 0755 42:42", "out/d/f f 0644 d/f 42:42"}, ""},
		{"names from the dest passwd", false, &llb.Chown{User: "app"}, []string{"out d 0755 1001:1002", "out/d d 0755 1001:1002", "out/d/f f 0644 d/f 1001:1002"}, ""},
		{"user and group names", true, &llb.Chown{User: "app", Group: "staff"}, []string{"out d 0755 1001:50", "out/d d 0755 1001:50", "out/d/f f 0644 d/f 1001:50"}, ""},
		{"unknown user", true, &llb.Chown{User: "nobody2"}, nil, "unable to find user nobody2"},
		{"unknown group", true, &llb.Chown{User: "app", Group: "wheel9"}, nil, "unable to find group wheel9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
			mkTree(t, src, "d/f")
			must(t, os.Lchown(filepath.Join(src, "d"), 7, 8))
			must(t, os.Lchown(filepath.Join(src, "d/f"), 7, 8))
			mkTree(t, dst, passwd, group)
			c := dockerCopy("/out/", "d")
			c.DirContentsOnly = false
			c.Chown = tc.chown
			err := Apply(context.Background(), dst, []Input{{Root: src, Local: tc.local}}, llb.FileOp{Actions: []llb.FileAction{{Copy: &c}}})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			must(t, err)
			var got []string
			for _, l := range describe(t, dst, true) {
				if !strings.HasPrefix(l, "etc") {
					got = append(got, l)
				}
			}
			if !equalLists(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestChownPasswdConfined(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	dst := filepath.Join(base, "dst")
	mkTree(t, base, "outside/passwd=evil:x:666:666::/:/bin/sh\n")
	// /etc in the dest points outside of it; the lookup must stay inside.
	mkTree(t, dst, "etc->../outside", "f")
	_, err := resolveChown(dst, &llb.Chown{User: "evil"})
	if err == nil {
		t.Fatal("user resolved through an escaping /etc symlink")
	}
}

// TestCopySocket is BuildKit's testCopySocket (issue 10 #13): a unix
// socket in the build context is copied as an empty regular file, and it
// counts in the checksum.
func TestCopySocket(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	mkTree(t, src, "a=a")
	l, err := net.Listen("unix", filepath.Join(src, "socket.sock"))
	if err != nil {
		t.Skipf("cannot create a unix socket: %v", err)
	}
	defer l.Close()
	must(t, os.Chmod(filepath.Join(src, "socket.sock"), 0o640))
	in := Input{Root: src, Local: true}
	c := dockerCopy("/", ".")
	must(t, Apply(context.Background(), dst, []Input{in}, llb.FileOp{Actions: []llb.FileAction{{Copy: &c}}}))
	fi, err := os.Lstat(filepath.Join(dst, "socket.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != 0 || fi.Mode().Perm() != 0o640 {
		t.Errorf("socket copied as %v (%d bytes), want an empty regular file 0640", fi.Mode(), fi.Size())
	}
	with, err := Checksum(context.Background(), in, &c, NewMemHasher())
	must(t, err)
	l.Close()
	os.Remove(filepath.Join(src, "socket.sock"))
	without, err := Checksum(context.Background(), in, &c, NewMemHasher())
	must(t, err)
	if with == without {
		t.Error("the socket does not count in the checksum")
	}
}
