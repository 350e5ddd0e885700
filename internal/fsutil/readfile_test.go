package fsutil

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadFileInRoot reads files of a hostile directory: links out of it
// resolve inside it, only regular files under the cap are read.
func TestReadFileInRoot(t *testing.T) {
	t.Parallel()
	top := t.TempDir()
	root := filepath.Join(top, "ctx")
	os.Mkdir(root, 0o755)
	secret := filepath.Join(top, "secret")
	os.WriteFile(secret, []byte("SECRET"), 0o600)
	os.WriteFile(filepath.Join(root, "ok"), []byte("FROM scratch\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "shadow"), []byte("inside"), 0o644)
	os.WriteFile(filepath.Join(root, "big"), make([]byte, 101), 0o644)
	os.Mkdir(filepath.Join(root, "dir"), 0o755)
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"abs-secret": secret, "rel-secret": "../secret", "deep-secret": "../../../../.." + secret,
		"zero": "/dev/zero", "shadow": "/etc/shadow", "tolink": "abs-secret", "loop": "loop",
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, want, err string
		notExist        bool
	}{
		{name: "ok", want: "FROM scratch\n"},
		{name: "sub/../ok", want: "FROM scratch\n"},
		{name: "../../ok", want: "FROM scratch\n"},
		{name: "shadow", want: "inside"},
		{name: "abs-secret", notExist: true},
		{name: "rel-secret", notExist: true},
		{name: "deep-secret", notExist: true},
		{name: "tolink", notExist: true},
		{name: "zero", notExist: true},
		{name: "missing", notExist: true},
		{name: "big", err: "file too large: 101 bytes, the limit is 100"},
		{name: "dir", err: "not a regular file but a directory"},
		{name: "fifo", err: "not a regular file but a named pipe"},
		{name: "loop", err: "too many levels of symbolic links"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ReadFileInRoot(context.Background(), root, tc.name, 100)
			switch {
			case tc.notExist:
				if !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("got %q, %v; want a not-exist error", got, err)
				}
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want error %q", got, err, tc.err)
				}
				var pe *os.PathError
				if !errors.As(err, &pe) {
					t.Errorf("%v is not a *os.PathError", err)
				}
			default:
				if err != nil || string(got) != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
			}
			if strings.Contains(string(got), "SECRET") || (err != nil && strings.Contains(err.Error(), "SECRET")) {
				t.Errorf("the file outside the root leaked: %q %v", got, err)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ReadFileInRoot(ctx, root, "ok", 100); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled read: %v, want context.Canceled", err)
	}
}
