package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/state"
)

// tarEntry is one entry of a test tar.
type tarEntry struct {
	name, link, body string
	typ              byte
	mode             int64
}

func makeTar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestExtractContextTar checks that a context tar from stdin lands inside
// its directory whatever its entries say: "../" and absolute names are
// resolved inside it, symlinks pointing out are kept as links but never
// written through, and hard links must name an earlier file inside it.
func TestExtractContextTar(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("confined", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "ctx")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		data := makeTar(t, []tarEntry{
			{name: "Dockerfile", typ: tar.TypeReg, body: "FROM scratch\n"},
			{name: "sub/", typ: tar.TypeDir, mode: 0o750},
			{name: "sub/run.sh", typ: tar.TypeReg, body: "#!/bin/sh\n", mode: 0o755},
			{name: "../../escape.txt", typ: tar.TypeReg, body: "dotdot"},
			{name: "/abs/escape.txt", typ: tar.TypeReg, body: "abs"},
			// Symlinks are resolved inside the context: an absolute one
			// to a directory of the tar is written through into it.
			{name: "out", typ: tar.TypeSymlink, link: "/sub"},
			{name: "out/via-link", typ: tar.TypeReg, body: "via"},
			{name: "up", typ: tar.TypeSymlink, link: "../../../sub"},
			{name: "up/via-up", typ: tar.TypeReg, body: "up"},
			{name: "olink", typ: tar.TypeSymlink, link: outside},
			// A symlink to a file out, replaced by a regular file.
			{name: "vlink", typ: tar.TypeSymlink, link: victim},
			{name: "vlink", typ: tar.TypeReg, body: "replaced"},
			{name: "hard", typ: tar.TypeLink, link: "sub/run.sh"},
			{name: "fifo", typ: tar.TypeFifo},
		})
		if err := extractContextTar(bytes.NewReader(data), dir); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(victim); string(got) != "untouched" {
			t.Errorf("%s = %q: written through a symlink", victim, got)
		}
		if entries, _ := os.ReadDir(outside); len(entries) != 1 {
			t.Errorf("%s has %d entries, want only the victim", outside, len(entries))
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape.txt")); err == nil {
			t.Errorf("../../escape.txt was written outside the context")
		}
		for name, body := range map[string]string{
			"Dockerfile":     "FROM scratch\n",
			"sub/run.sh":     "#!/bin/sh\n",
			"escape.txt":     "dotdot",
			"abs/escape.txt": "abs",
			"vlink":          "replaced",
			"hard":           "#!/bin/sh\n",
			"sub/via-link":   "via",
			"sub/via-up":     "up",
		} {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || string(got) != body {
				t.Errorf("%s = %q, %v; want %q", name, got, err, body)
			}
		}
		if fi, err := os.Lstat(filepath.Join(dir, "vlink")); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("vlink: %v, %v; want a regular file", fi, err)
		}
		if fi, err := os.Lstat(filepath.Join(dir, "sub/run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("sub/run.sh mode: %v, %v; want 0755", fi, err)
		}
		if fi, err := os.Lstat(filepath.Join(dir, "sub")); err != nil || fi.Mode().Perm() != 0o750 {
			t.Errorf("sub mode: %v, %v; want 0750", fi, err)
		}
		if l, err := os.Readlink(filepath.Join(dir, "olink")); err != nil || l != outside {
			t.Errorf("olink -> %q, %v; want the link kept as written", l, err)
		}
		if _, err := os.Lstat(filepath.Join(dir, "fifo")); err == nil {
			t.Errorf("a fifo was created in the context")
		}
	})

	errs := []struct {
		name    string
		entries []tarEntry
		err     string
	}{
		{"hard link out", []tarEntry{{name: "h", typ: tar.TypeLink, link: "../../" + victim}}, "not an earlier regular file"},
		{"hard link absolute", []tarEntry{{name: "h", typ: tar.TypeLink, link: victim}}, "not an earlier regular file"},
		{"hard link through a symlink", []tarEntry{
			{name: "l", typ: tar.TypeSymlink, link: victim},
			{name: "h", typ: tar.TypeLink, link: "l"},
		}, "not an earlier regular file"},
		{"a file as a parent directory", []tarEntry{
			{name: "f", typ: tar.TypeReg, body: "x"},
			{name: "f/g", typ: tar.TypeReg, body: "y"},
		}, "f/g"},
	}
	for _, e := range errs {
		t.Run(e.name, func(t *testing.T) {
			dir := t.TempDir()
			err := extractContextTar(bytes.NewReader(makeTar(t, e.entries)), dir)
			if err == nil || !strings.Contains(err.Error(), e.err) {
				t.Fatalf("error = %v, want one containing %q", err, e.err)
			}
			if got, _ := os.ReadFile(victim); string(got) != "untouched" {
				t.Errorf("%s = %q", victim, got)
			}
		})
	}

	// Writes through links that point out of the context: an error, or a
	// file inside the context, never anything outside.
	escapes := []struct {
		name    string
		entries []tarEntry
	}{
		{"absolute dir link", []tarEntry{
			{name: "out", typ: tar.TypeSymlink, link: outside},
			{name: "out/victim", typ: tar.TypeReg, body: "pwned"},
			{name: "out/new", typ: tar.TypeReg, body: "pwned"},
		}},
		{"relative dir link", []tarEntry{
			{name: "d/", typ: tar.TypeDir},
			{name: "d/out", typ: tar.TypeSymlink, link: "../../../../../../../../" + outside},
			{name: "d/out/victim", typ: tar.TypeReg, body: "pwned"},
		}},
		{"dir entry through a link", []tarEntry{
			{name: "out", typ: tar.TypeSymlink, link: outside},
			{name: "out/newdir/", typ: tar.TypeDir},
		}},
		{"symlink through a link", []tarEntry{
			{name: "out", typ: tar.TypeSymlink, link: outside},
			{name: "out/victim", typ: tar.TypeSymlink, link: "/etc/passwd"},
		}},
		{"hard link through a link", []tarEntry{
			{name: "f", typ: tar.TypeReg, body: "pwned"},
			{name: "out", typ: tar.TypeSymlink, link: outside},
			{name: "out/victim", typ: tar.TypeLink, link: "f"},
		}},
	}
	for _, e := range escapes {
		t.Run("escape "+e.name, func(t *testing.T) {
			err := extractContextTar(bytes.NewReader(makeTar(t, e.entries)), t.TempDir())
			if got, _ := os.ReadFile(victim); string(got) != "untouched" {
				t.Errorf("%s = %q (extract error %v)", victim, got, err)
			}
			if fi, lerr := os.Lstat(victim); lerr != nil || !fi.Mode().IsRegular() {
				t.Errorf("%s was replaced: %v %v", victim, fi, lerr)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 1 {
				t.Errorf("%s has %d entries, want only the victim (extract error %v)", outside, len(entries), err)
			}
		})
	}

	t.Run("not a tar", func(t *testing.T) {
		err := extractContextTar(strings.NewReader(strings.Repeat("FROM scratch\n", 100)), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "context tar") {
			t.Fatalf("error = %v, want a context tar error", err)
		}
	})
}

// TestStdinInputs checks "-" as the context (a tar, with -f naming a file
// inside it) and -f - (a Dockerfile), and that the cleanup removes what
// was extracted under the root.
func TestStdinInputs(t *testing.T) {
	t.Run("context tar", func(t *testing.T) {
		root := t.TempDir()
		o := BuildOptions{ContextDir: "-", Root: root, Dockerfile: "docker/Dockerfile.x"}
		data := makeTar(t, []tarEntry{
			{name: "docker/Dockerfile.x", typ: tar.TypeReg, body: "FROM scratch\n"},
			{name: "a.txt", typ: tar.TypeReg, body: "a"},
		})
		cleanup, err := stdinInputsTest(t, &o, bytes.NewReader(data))
		if err != nil {
			cleanup()
			t.Fatal(err)
		}
		if !strings.HasPrefix(o.ContextDir, filepath.Join(root, "tmp")+"/") {
			t.Errorf("context %s, want it under %s/tmp", o.ContextDir, root)
		}
		if o.Dockerfile != filepath.Join(o.ContextDir, "docker/Dockerfile.x") {
			t.Errorf("Dockerfile %s, want the file inside the tar", o.Dockerfile)
		}
		if b, err := os.ReadFile(filepath.Join(o.ContextDir, "a.txt")); err != nil || string(b) != "a" {
			t.Errorf("a.txt = %q, %v", b, err)
		}
		cleanup()
		if entries, err := os.ReadDir(filepath.Join(root, "tmp")); err != nil || len(entries) != 0 {
			t.Errorf("after cleanup %s/tmp has %v (%v), want it empty", root, entries, err)
		}
	})
	t.Run("dockerfile", func(t *testing.T) {
		root, ctxDir := t.TempDir(), t.TempDir()
		o := BuildOptions{ContextDir: ctxDir, Root: root, Dockerfile: "-"}
		cleanup, err := stdinInputsTest(t, &o, strings.NewReader("FROM scratch\nCOPY a /\n"))
		if err != nil {
			cleanup()
			t.Fatal(err)
		}
		if o.ContextDir != ctxDir {
			t.Errorf("context changed to %s", o.ContextDir)
		}
		if b, err := os.ReadFile(o.Dockerfile); err != nil || string(b) != "FROM scratch\nCOPY a /\n" {
			t.Errorf("Dockerfile %s = %q, %v", o.Dockerfile, b, err)
		}
		cleanup()
		if _, err := os.Stat(o.Dockerfile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the stdin Dockerfile outlived the cleanup: %v", err)
		}
	})
	t.Run("neither", func(t *testing.T) {
		root := t.TempDir()
		o := BuildOptions{ContextDir: "/ctx", Root: root}
		cleanup, err := stdinInputsTest(t, &o, strings.NewReader("x"))
		cleanup()
		if err != nil || o.ContextDir != "/ctx" || o.Dockerfile != "" {
			t.Errorf("stdinInputs without '-' changed %+v (%v)", o, err)
		}
		if _, err := os.Stat(filepath.Join(root, "tmp")); err == nil {
			t.Errorf("created %s/tmp without reading stdin", root)
		}
	})
	t.Run("both", func(t *testing.T) {
		o := BuildOptions{ContextDir: "-", Dockerfile: "-", Root: t.TempDir()}
		cleanup, err := stdinInputsTest(t, &o, strings.NewReader("x"))
		cleanup()
		if err == nil || !strings.Contains(err.Error(), "cannot both come from stdin") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("dockerfile too large", func(t *testing.T) {
		o := BuildOptions{ContextDir: t.TempDir(), Dockerfile: "-", Root: t.TempDir()}
		cleanup, err := stdinInputsTest(t, &o, bytes.NewReader(make([]byte, build.MaxDockerfileSize+1)))
		cleanup()
		if err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("error = %v", err)
		}
	})
	// As buildx: a compressed tar is a context too, anything that is not
	// an archive is a Dockerfile built with an empty context.
	ctxTar := makeTar(t, []tarEntry{{name: "Dockerfile", typ: tar.TypeReg, body: "FROM scratch\n"}, {name: "a", typ: tar.TypeReg, body: "a"}})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(ctxTar)
	zw.Close()
	compressed := map[string][]byte{"gzip": gz.Bytes()}
	if _, err := exec.LookPath("bzip2"); err == nil {
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin = bytes.NewReader(ctxTar)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		compressed["bzip2"] = out
	}
	for name, data := range compressed {
		t.Run(name+" context tar", func(t *testing.T) {
			o := BuildOptions{ContextDir: "-", Root: t.TempDir()}
			cleanup, err := stdinInputsTest(t, &o, bytes.NewReader(data))
			defer cleanup()
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(o.ContextDir, "a")); err != nil || string(b) != "a" {
				t.Errorf("a = %q, %v", b, err)
			}
		})
	}
	t.Run("dockerfile as the context", func(t *testing.T) {
		root := t.TempDir()
		o := BuildOptions{ContextDir: "-", Root: root}
		cleanup, err := stdinInputsTest(t, &o, strings.NewReader("FROM scratch\nENV A=1\n"))
		if err != nil {
			cleanup()
			t.Fatal(err)
		}
		if b, err := os.ReadFile(o.Dockerfile); err != nil || string(b) != "FROM scratch\nENV A=1\n" {
			t.Errorf("Dockerfile %s = %q, %v", o.Dockerfile, b, err)
		}
		if entries, err := os.ReadDir(o.ContextDir); err != nil || len(entries) != 0 {
			t.Errorf("context %s = %v, %v; want an empty directory", o.ContextDir, entries, err)
		}
		cleanup()
		checkEmptyTmp(t, root)
	})
	t.Run("dockerfile as the context and -f", func(t *testing.T) {
		o := BuildOptions{ContextDir: "-", Root: t.TempDir(), Dockerfile: "Dockerfile"}
		cleanup, err := stdinInputsTest(t, &o, strings.NewReader("FROM scratch\n"))
		cleanup()
		if err == nil || !strings.Contains(err.Error(), "ambiguous Dockerfile source") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("zstd context", func(t *testing.T) {
		o := BuildOptions{ContextDir: "-", Root: t.TempDir()}
		cleanup, err := stdinInputsTest(t, &o, bytes.NewReader(append([]byte{0x28, 0xb5, 0x2f, 0xfd}, make([]byte, 100)...)))
		cleanup()
		if err == nil || !strings.Contains(err.Error(), "xz or zstd") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("-f outside the tar", func(t *testing.T) {
		root := t.TempDir()
		o := BuildOptions{ContextDir: "-", Root: root, Dockerfile: "../../etc/passwd"}
		cleanup, err := stdinInputsTest(t, &o, bytes.NewReader(makeTar(t, []tarEntry{{name: "a", typ: tar.TypeReg, body: "a"}})))
		defer cleanup()
		if err == nil && !strings.HasPrefix(o.Dockerfile, o.ContextDir+"/") {
			t.Fatalf("-f resolved to %s, outside the context %s", o.Dockerfile, o.ContextDir)
		}
	})
}

// TestHostileDockerfileFiles builds contexts whose Dockerfile or ignore
// files point out of the context (issue 12): the target is never read,
// never printed, and /dev/zero or a FIFO fails at once instead of eating
// memory or hanging.
func TestHostileDockerfileFiles(t *testing.T) {
	top := t.TempDir()
	secret := filepath.Join(top, "credentials")
	os.WriteFile(secret, []byte("FROM scratch\nLABEL token=SECRET-TOKEN\n"), 0o600)
	for _, tc := range []struct {
		name  string
		setup func(ctxDir string) error
		flags func(o *BuildOptions, ctxDir string)
		want  string
	}{
		{name: "dockerfile to a host file", want: "no such file or directory",
			setup: func(d string) error { return os.Symlink(secret, filepath.Join(d, "Dockerfile")) }},
		{name: "dockerfile to /etc/shadow", want: "no such file or directory",
			setup: func(d string) error { return os.Symlink("/etc/shadow", filepath.Join(d, "Dockerfile")) }},
		{name: "dockerfile up and out", want: "no such file or directory",
			setup: func(d string) error { return os.Symlink("../../../../../../.."+secret, filepath.Join(d, "Dockerfile")) }},
		{name: "dockerfile to /dev/zero", want: "no such file or directory",
			setup: func(d string) error { return os.Symlink("/dev/zero", filepath.Join(d, "Dockerfile")) }},
		{name: "dockerfile a fifo", want: "not a regular file but a named pipe",
			setup: func(d string) error { return unix.Mkfifo(filepath.Join(d, "Dockerfile"), 0o644) }},
		{name: "dockerfile too large", want: "file too large",
			setup: func(d string) error { return os.Truncate(mustCreate(d, "Dockerfile"), build.MaxDockerfileSize+1) }},
		{name: "-f to a host file", want: "no such file or directory",
			setup: func(d string) error { return os.Symlink(secret, filepath.Join(d, "app.Dockerfile")) },
			flags: func(o *BuildOptions, d string) { o.Dockerfile = filepath.Join(d, "app.Dockerfile") }},
		// Resolved inside the context, the link names no file: as without
		// an ignore file, the build goes on (or fails later for want of
		// root, never on the ignore file).
		{name: ".dockerignore to /dev/zero", want: "",
			setup: func(d string) error {
				os.WriteFile(filepath.Join(d, "Dockerfile"), []byte("FROM scratch\nLABEL x=1\n"), 0o644)
				return os.Symlink("/dev/zero", filepath.Join(d, ".dockerignore"))
			}},
		{name: ".dockerignore a fifo", want: "not a regular file",
			setup: func(d string) error {
				os.WriteFile(filepath.Join(d, "Dockerfile"), []byte("FROM scratch\nLABEL x=1\n"), 0o644)
				return unix.Mkfifo(filepath.Join(d, ".dockerignore"), 0o644)
			}},
		{name: "NAME.dockerignore a fifo", want: "not a regular file",
			setup: func(d string) error {
				os.WriteFile(filepath.Join(d, "app.Dockerfile"), []byte("FROM scratch\nLABEL x=1\n"), 0o644)
				return unix.Mkfifo(filepath.Join(d, "app.Dockerfile.dockerignore"), 0o644)
			},
			flags: func(o *BuildOptions, d string) { o.Dockerfile = filepath.Join(d, "app.Dockerfile") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctxDir := filepath.Join(t.TempDir(), "ctx")
			os.Mkdir(ctxDir, 0o755)
			if err := tc.setup(ctxDir); err != nil {
				t.Fatal(err)
			}
			o := BuildOptions{ContextDir: ctxDir, Progress: "plain", Root: filepath.Join(top, "root-"+strings.ReplaceAll(tc.name, "/", "_"))}
			if tc.flags != nil {
				tc.flags(&o, ctxDir)
			}
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := Build(ctx, o, &out)
			if tc.want == "" {
				if err != nil && strings.Contains(err.Error(), "dockerignore") {
					t.Fatalf("build: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("build: %v; want an error containing %q\n%s", err, tc.want, out.String())
			}
			if strings.Contains(err.Error()+out.String(), "SECRET-TOKEN") {
				t.Errorf("the host file leaked: %v\n%s", err, out.String())
			}
		})
	}
}

func mustCreate(dir, name string) string {
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		panic(err)
	}
	f.Close()
	return p
}

// stdinInputsTest runs stdinInputs with o.Root opened as the build opens it.
func stdinInputsTest(t *testing.T, o *BuildOptions, stdin io.Reader) (func(), error) {
	t.Helper()
	root, err := state.Open(o.Root, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return stdinInputs(o, root, stdin)
}

// TestExcludedSourceNamesIgnoreFile: a COPY source that the per-Dockerfile
// ignore file excludes is reported with that file's name relative to the
// context (the one the user wrote), whether -f names the Dockerfile by an
// absolute path or the context is a tar on stdin (a temporary directory);
// the context's .dockerignore is named as before.
func TestExcludedSourceNamesIgnoreFile(t *testing.T) {
	requireRootOverlay(t)
	files := map[string]string{
		"sub/x.Dockerfile":              "FROM scratch\nCOPY secret.txt /\n",
		"sub/x.Dockerfile.dockerignore": "secret.txt\n",
		"secret.txt":                    "s",
	}
	root := t.TempDir()
	build := func(t *testing.T, o BuildOptions) string {
		t.Helper()
		o.Progress, o.Root = "plain", root
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := Build(ctx, o, &out); err == nil {
			t.Fatalf("build succeeded:\n%s", out.String())
		}
		// The ERROR line, the last of the output.
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		return lines[len(lines)-1]
	}
	t.Run("directory", func(t *testing.T) {
		ctxDir := t.TempDir()
		writeFiles(t, ctxDir, files)
		err := build(t, BuildOptions{ContextDir: ctxDir, Dockerfile: filepath.Join(ctxDir, "sub/x.Dockerfile")})
		if !strings.HasSuffix(err, `source "/secret.txt": not found: excluded by sub/x.Dockerfile.dockerignore`) {
			t.Errorf("error: %s", err)
		}
	})
	t.Run("stdin tar", func(t *testing.T) {
		var tarball bytes.Buffer
		tw := tar.NewWriter(&tarball)
		for _, name := range []string{"sub/x.Dockerfile", "sub/x.Dockerfile.dockerignore", "secret.txt"} {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg})
			tw.Write([]byte(files[name]))
		}
		tw.Close()
		err := build(t, BuildOptions{ContextDir: "-", Dockerfile: "sub/x.Dockerfile", Stdin: &tarball})
		if !strings.HasSuffix(err, "excluded by sub/x.Dockerfile.dockerignore") {
			t.Errorf("error: %s", err)
		}
	})
	t.Run("context .dockerignore", func(t *testing.T) {
		ctxDir := t.TempDir()
		writeFiles(t, ctxDir, map[string]string{"Dockerfile": "FROM scratch\nCOPY secret.txt /\n", ".dockerignore": "secret.txt\n", "secret.txt": "s"})
		if err := build(t, BuildOptions{ContextDir: ctxDir}); !strings.HasSuffix(err, "excluded by .dockerignore") {
			t.Errorf("error: %s", err)
		}
	})
}
