package fileop

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/llb"
)

type tarEntry struct {
	name     string
	typ      byte
	body     string
	linkname string
	mode     int64
}

func makeTar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if e.typ == tar.TypeDir {
				mode = 0o755
			}
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: mode, Linkname: e.linkname,
			Size: int64(len(e.body)), ModTime: time.Unix(1234567890, 0), Uid: 5, Gid: 6}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		must(t, tw.WriteHeader(h))
		if e.typ == tar.TypeReg {
			_, err := tw.Write([]byte(e.body))
			must(t, err)
		}
	}
	must(t, tw.Close())
	return buf.Bytes()
}

func compressWith(t *testing.T, kind string, data []byte) []byte {
	t.Helper()
	switch kind {
	case "plain":
		return data
	case "gzip":
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, err := zw.Write(data)
		must(t, err)
		must(t, zw.Close())
		return buf.Bytes()
	}
	if _, err := exec.LookPath(kind); err != nil {
		t.Skipf("%s not installed", kind)
	}
	cmd := exec.Command(kind, "-c")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	must(t, err)
	return out
}

func TestUnpackFormats(t *testing.T) {
	archive := makeTar(t, []tarEntry{
		{name: "dir/", typ: tar.TypeDir},
		{name: "dir/file", typ: tar.TypeReg, body: "content", mode: 0o4750},
		{name: "dir/link", typ: tar.TypeSymlink, linkname: "file"},
		{name: "dir/hard", typ: tar.TypeLink, linkname: "dir/file"},
		{name: ".wh.gone", typ: tar.TypeReg, body: "whiteout kept"},
	})
	want := []string{".wh.gone f 0644 whiteout kept", "dir d 0755", "dir/file f 4750 content", "dir/hard f 4750 content", "dir/link l file", "existing f 0644 existing", "keep d 0755", "keep/old f 0644 keep/old"}
	for _, kind := range []string{"plain", "gzip", "bzip2", "xz", "zstd"} {
		t.Run(kind, func(t *testing.T) {
			base := t.TempDir()
			src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
			must(t, os.Mkdir(src, 0o755))
			must(t, os.WriteFile(filepath.Join(src, "a.tar"), compressWith(t, kind, archive), 0o644))
			mkTree(t, dst, "out/existing", "out/keep/old")
			c := dockerCopy("/out", "a.tar")
			c.AttemptUnpack = true
			must(t, Apply(context.Background(), dst, []Input{{Root: src, Local: true}}, llb.FileOp{Actions: []llb.FileAction{{Copy: &c}}}))
			got := describe(t, filepath.Join(dst, "out"), false)
			for i := range got {
				got[i] = strings.Replace(got[i], "existing f 0644 out/existing", "existing f 0644 existing", 1)
				got[i] = strings.Replace(got[i], "keep/old f 0644 out/keep/old", "keep/old f 0644 keep/old", 1)
			}
			if !equalLists(got, want) {
				t.Errorf("got  %q\nwant %q", got, want)
			}
			fi, err := os.Stat(filepath.Join(dst, "out/dir/file"))
			must(t, err)
			if !fi.ModTime().Equal(time.Unix(1234567890, 0)) {
				t.Errorf("mtime %v", fi.ModTime())
			}
			if os.Geteuid() == 0 {
				if d := describe(t, filepath.Join(dst, "out/dir"), true); !strings.HasSuffix(d[0], " 5:6") {
					t.Errorf("owner not kept: %q", d)
				}
			}
			a, _ := os.Stat(filepath.Join(dst, "out/dir/file"))
			h, _ := os.Stat(filepath.Join(dst, "out/dir/hard"))
			if !os.SameFile(a, h) {
				t.Error("hard link not extracted as a link")
			}
		})
	}
}

func TestUnpackNonArchiveIsCopied(t *testing.T) {
	for _, body := range []string{"plain text", "\x1f\x8bnot gzip", "BZhnot bzip"} {
		base := t.TempDir()
		src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
		must(t, os.MkdirAll(src, 0o755))
		must(t, os.MkdirAll(dst, 0o755))
		must(t, os.WriteFile(filepath.Join(src, "f.tar.gz"), []byte(body), 0o644))
		c := dockerCopy("/out/", "f.tar.gz")
		c.AttemptUnpack = true
		must(t, Apply(context.Background(), dst, []Input{{Root: src}}, llb.FileOp{Actions: []llb.FileAction{{Copy: &c}}}))
		dt, err := os.ReadFile(filepath.Join(dst, "out/f.tar.gz"))
		if err != nil || string(dt) != body {
			t.Errorf("%q: copied %q, %v", body, dt, err)
		}
	}
}

func TestUnpackHostile(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
		want    []string
		wantErr string
	}{
		{
			name: "dotdot and absolute names stay inside",
			entries: []tarEntry{
				{name: "../../../sentinel/secret", typ: tar.TypeReg, body: "x"},
				{name: "/abs", typ: tar.TypeReg, body: "y"},
				{name: "a/../../b", typ: tar.TypeReg, body: "z"},
			},
			want: []string{"abs f 0644 y", "b f 0644 z", "sentinel d 0755", "sentinel/secret f 0644 x"},
		},
		{
			name: "symlink then write through it",
			entries: []tarEntry{
				{name: "l", typ: tar.TypeSymlink, linkname: "/../../sentinel"},
				{name: "l/secret", typ: tar.TypeReg, body: "pwned"},
				{name: "r", typ: tar.TypeSymlink, linkname: "../../../sentinel"},
				{name: "r/new", typ: tar.TypeReg, body: "n"},
			},
			want: []string{"l l /../../sentinel", "r l ../../../sentinel", "sentinel d 0755", "sentinel/new f 0644 n", "sentinel/secret f 0644 pwned"},
		},
		{
			name: "hard link to outside",
			entries: []tarEntry{
				{name: "h", typ: tar.TypeLink, linkname: "../../sentinel/secret"},
			},
			wantErr: "hard link target ../../sentinel/secret",
		},
		{
			name: "hard link through a symlink",
			entries: []tarEntry{
				{name: "l", typ: tar.TypeSymlink, linkname: "../../sentinel"},
				{name: "h", typ: tar.TypeLink, linkname: "l/secret"},
			},
			wantErr: "hard link target l/secret",
		},
		{
			name: "entry replaces a symlink instead of following it",
			entries: []tarEntry{
				{name: "x", typ: tar.TypeSymlink, linkname: "../../sentinel/secret"},
				{name: "x", typ: tar.TypeReg, body: "replaced"},
			},
			want: []string{"x f 0644 replaced"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
			must(t, os.MkdirAll(src, 0o755))
			must(t, os.MkdirAll(dst, 0o755))
			check := sentinel(t, base)
			must(t, os.WriteFile(filepath.Join(src, "a.tar"), makeTar(t, tc.entries), 0o644))
			c := dockerCopy("/", "a.tar")
			c.AttemptUnpack = true
			err := Apply(context.Background(), dst, []Input{{Root: src}}, llb.FileOp{Actions: []llb.FileAction{{Copy: &c}}})
			check()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			must(t, err)
			if got := describe(t, dst, false); !equalLists(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
