package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/builderdev/builder/internal/fsutil"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func makeTar(t *testing.T, es ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode, Size: int64(len(e.body)), Uid: 1234, Gid: 5678}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestExtractConfined: whatever the options, nothing outside the
// destination is written, and the options do what they say.
func TestExtractConfined(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opt     Options
		entries []entry
		want    map[string]string // path -> body ("" for present, "-" for absent)
		wantErr string
		target  error
	}{
		{
			name: "dotdot cleaned",
			entries: []entry{
				{name: "../../x", typ: tar.TypeReg, body: "x"},
				{name: "/abs/y", typ: tar.TypeReg, body: "y"},
			},
			want: map[string]string{"x": "x", "abs/y": "y"},
		},
		{
			name:    "dotdot rejected",
			opt:     Options{RejectDotDot: true},
			entries: []entry{{name: "a/../../x", typ: tar.TypeReg, body: "x"}},
			wantErr: "contains ..", target: ErrUnsafePath,
		},
		{
			name: "symlinks resolve inside",
			entries: []entry{
				{name: "out", typ: tar.TypeSymlink, link: "/../../../OUTSIDE"},
				{name: "out/f", typ: tar.TypeReg, body: "in"},
				{name: "rel", typ: tar.TypeSymlink, link: "../../../../OUTSIDE"},
				{name: "rel/g", typ: tar.TypeReg, body: "in2"},
			},
			want: map[string]string{"OUTSIDE/f": "in", "OUTSIDE/g": "in2"},
		},
		{
			name:    "hard link out",
			entries: []entry{{name: "h", typ: tar.TypeLink, link: "../OUTSIDE/victim"}},
			wantErr: "hard link target ../OUTSIDE/victim: not an earlier regular file",
		},
		{
			name: "hard link to a symlink, regular only",
			opt:  Options{RegularHardLinks: true},
			entries: []entry{
				{name: "l", typ: tar.TypeSymlink, link: "x"},
				{name: "h", typ: tar.TypeLink, link: "l"},
			},
			wantErr: "not an earlier regular file",
		},
		{
			name: "devices and fifos skipped",
			entries: []entry{
				{name: "null", typ: tar.TypeChar},
				{name: "fifo", typ: tar.TypeFifo},
			},
			want: map[string]string{"null": "-", "fifo": "-"},
		},
		{
			name: "whiteouts as files without the option",
			entries: []entry{
				{name: "keep", typ: tar.TypeReg, body: "k"},
				{name: ".wh.keep", typ: tar.TypeReg},
			},
			want: map[string]string{"keep": "k", ".wh.keep": ""},
		},
		{
			name: "whiteouts applied",
			opt:  Options{Whiteouts: true},
			entries: []entry{
				{name: "lower", typ: tar.TypeReg, body: "l"},
				{name: ".wh.pre", typ: tar.TypeReg},
				{name: "d/.wh..wh..opq", typ: tar.TypeReg},
			},
			want: map[string]string{"pre": "-", "d/old": "-", ".wh.pre": "-", "lower": "l"},
		},
		{
			name:    "whiteout escaping",
			opt:     Options{Whiteouts: true},
			entries: []entry{{name: ".wh..", typ: tar.TypeReg}},
			target:  ErrUnsafePath, wantErr: "invalid whiteout name",
		},
		{
			name:    "too many entries",
			opt:     Options{MaxEntries: 2},
			entries: []entry{{name: "a", typ: tar.TypeReg}, {name: "b", typ: tar.TypeReg}, {name: "c", typ: tar.TypeReg}},
			target:  ErrTooLarge, wantErr: "more than 2 entries",
		},
		{
			name:    "too many bytes",
			opt:     Options{MaxBytes: 5},
			entries: []entry{{name: "a", typ: tar.TypeReg, body: "abc"}, {name: "b", typ: tar.TypeReg, body: "abc"}},
			target:  ErrTooLarge, wantErr: "more than 5 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			outside := filepath.Join(base, "OUTSIDE")
			dst := filepath.Join(base, "a", "b", "dst")
			for _, d := range []string{outside, dst, filepath.Join(dst, "d")} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			os.WriteFile(filepath.Join(outside, "victim"), []byte("v"), 0o644)
			os.WriteFile(filepath.Join(dst, "pre"), []byte("p"), 0o644)
			os.WriteFile(filepath.Join(dst, "d", "old"), []byte("o"), 0o644)

			err := Extract(context.Background(), bytes.NewReader(makeTar(t, tt.entries...)), dst, tt.opt)
			if ents, _ := os.ReadDir(outside); len(ents) != 1 {
				t.Errorf("outside has %d entries, want only the victim", len(ents))
			}
			if b, _ := os.ReadFile(filepath.Join(outside, "victim")); string(b) != "v" {
				t.Errorf("victim = %q", b)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if tt.target != nil && !errors.Is(err, tt.target) {
					t.Errorf("err %v is not %v", err, tt.target)
				}
				if strings.Contains(err.Error(), base) {
					t.Errorf("err %v names the host path", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for p, body := range tt.want {
				b, err := os.ReadFile(filepath.Join(dst, p))
				switch {
				case body == "-" && !errors.Is(err, os.ErrNotExist):
					t.Errorf("%s exists (%v)", p, err)
				case body != "-" && (err != nil || string(b) != body):
					t.Errorf("%s = %q, %v; want %q", p, b, err, body)
				}
			}
		})
	}
}

// TestExtractOwnersAndModes: the archive's owners or Owner, ModeMask.
func TestExtractOwnersAndModes(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	data := makeTar(t, entry{name: "s", typ: tar.TypeReg, mode: 0o4755}, entry{name: "d/", typ: tar.TypeDir, mode: 0o750})
	tests := []struct {
		opt       Options
		uid, gid  int
		sMode     os.FileMode
		wantOwner bool
	}{
		{Options{ArchiveOwners: true}, 1234, 5678, 0o755 | os.ModeSetuid, true},
		{Options{ArchiveOwners: true, Owner: &fsutil.Owner{UID: 7, GID: 8}}, 7, 8, 0o755 | os.ModeSetuid, true},
		{Options{ModeMask: 0o777}, 0, 0, 0o755, false},
	}
	for _, tt := range tests {
		dst := t.TempDir()
		if err := Extract(context.Background(), bytes.NewReader(data), dst, tt.opt); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(filepath.Join(dst, "s"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != tt.sMode {
			t.Errorf("%+v: s mode %v, want %v", tt.opt, fi.Mode(), tt.sMode)
		}
		uid, gid := ownerOf(fi)
		if tt.wantOwner && (uid != tt.uid || gid != tt.gid) {
			t.Errorf("%+v: s owned by %d:%d, want %d:%d", tt.opt, uid, gid, tt.uid, tt.gid)
		}
		if !tt.wantOwner && uid != os.Getuid() {
			t.Errorf("%+v: s owned by %d, want the caller", tt.opt, uid)
		}
		if fi, err := os.Lstat(filepath.Join(dst, "d")); err != nil || fi.Mode().Perm() != 0o750 {
			t.Errorf("%+v: d: %v, %v", tt.opt, fi, err)
		}
	}
}

func ownerOf(fi os.FileInfo) (int, int) {
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}
