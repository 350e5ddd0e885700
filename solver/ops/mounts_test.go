package ops

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/solver/ops/internal/fileop"
)

func u32(v uint32) *uint32 { return &v }
func intp(v int) *int      { return &v }

func TestCacheDirNameDistinctAndSafe(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, id := range []string{"a/b", "a_b", "../../..", "/", "", "x\x00y", strings.Repeat("z", 300)} {
		n := cacheDirName(id)
		if n == "" || strings.ContainsAny(n, "/\x00") || n == "." || n == ".." {
			t.Errorf("cacheDirName(%q) = %q is not a safe path element", id, n)
		}
		if prev, ok := seen[n]; ok {
			t.Errorf("ids %q and %q share the cache dir %q", prev, id, n)
		}
		seen[n] = id
	}
}

func TestCacheSharingModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown cache dirs")
	}
	state := t.TempDir()
	w := New(Options{StateDir: state})
	ctx := context.Background()

	t.Run("shared", func(t *testing.T) {
		m := llb.Mount{Input: -1, CacheID: "s", CacheSharing: llb.SharingShared, Dest: "/c"}
		a, ra, err := w.acquireCache(ctx, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, rb, err := w.acquireCache(ctx, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Errorf("shared users got %s and %s, want one dir", a, b)
		}
		// A step holds the mount's shared lock until it releases it: an
		// export of the mount waits for it.
		err = w.WithCacheMount(ctx, "s", 200*time.Millisecond, func(string) error { return nil })
		if !errors.Is(err, ErrCacheMountBusy) {
			t.Errorf("WithCacheMount while steps use the mount: %v, want ErrCacheMountBusy", err)
		}
		ra()
		rb()
		var got string
		if err := w.WithCacheMount(ctx, "s", time.Second, func(dir string) error { got = dir; return nil }); err != nil || got != a {
			t.Errorf("WithCacheMount after the steps: dir %q, %v; want %s", got, err, a)
		}
		if ids := w.UsedCacheMounts(); len(ids) != 1 || ids[0] != "s" {
			t.Errorf("UsedCacheMounts = %v, want [s]", ids)
		}
	})
	t.Run("private", func(t *testing.T) {
		m := llb.Mount{Input: -1, CacheID: "p", CacheSharing: llb.SharingPrivate, Dest: "/c"}
		a, ra, err := w.acquireCache(ctx, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, rb, err := w.acquireCache(ctx, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a == b {
			t.Fatalf("concurrent private users share %s", a)
		}
		ra()
		c, rc, err := w.acquireCache(ctx, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c != a {
			t.Errorf("a released private dir is reused: got %s, want %s", c, a)
		}
		rb()
		rc()
	})
	t.Run("locked", func(t *testing.T) {
		m := llb.Mount{Input: -1, CacheID: "l", CacheSharing: llb.SharingLocked, Dest: "/c"}
		var inside, maxInside atomic.Int32
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, release, err := w.acquireCache(ctx, m, nil)
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				for {
					old := maxInside.Load()
					if n <= old || maxInside.CompareAndSwap(old, n) {
						break
					}
				}
				time.Sleep(10 * time.Millisecond)
				inside.Add(-1)
				release()
			}()
		}
		wg.Wait()
		if maxInside.Load() != 1 {
			t.Errorf("%d locked users at once, want 1", maxInside.Load())
		}
		// A waiter gives up with its context.
		_, release, err := w.acquireCache(ctx, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if _, _, err := w.acquireCache(cctx, m, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("waiting on a held lock: %v, want deadline exceeded", err)
		}
		release()
	})
	t.Run("mode and owner on creation", func(t *testing.T) {
		m := llb.Mount{Input: -1, CacheID: "owned", Dest: "/c", Mode: u32(0o750), UID: intp(1234), GID: intp(99)}
		dir, _, err := w.acquireCache(ctx, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o750 {
			t.Errorf("mode %o, want 750", fi.Mode().Perm())
		}
		if uid, gid := ownerOf(t, dir); uid != 1234 || gid != 99 {
			t.Errorf("owner %d:%d, want 1234:99", uid, gid)
		}
	})
	t.Run("seeded from a local tree", func(t *testing.T) {
		src := t.TempDir()
		os.MkdirAll(filepath.Join(src, "sub"), 0o755)
		os.WriteFile(filepath.Join(src, "sub", "seed.txt"), []byte("seed"), 0o644)
		in := &localResult{in: fileop.Input{Root: src, Local: true}}
		m := llb.Mount{Input: 0, Selector: "/sub", CacheID: "seeded", Dest: "/c"}
		root, _, err := w.acquireCache(ctx, m, in)
		if err != nil {
			t.Fatal(err)
		}
		// The cache is a copy of the whole tree; source= is the mounted
		// directory in it.
		dir, err := cacheSubdir(root, m)
		if err != nil {
			t.Fatal(err)
		}
		if dir != filepath.Join(root, "sub") {
			t.Errorf("mounted %s, want %s/sub", dir, root)
		}
		if data, err := os.ReadFile(filepath.Join(dir, "seed.txt")); string(data) != "seed" {
			t.Errorf("seeded cache: %q, %v", data, err)
		}
		// The seed is only used when the cache is created.
		os.WriteFile(filepath.Join(dir, "seed.txt"), []byte("changed"), 0o644)
		if _, _, err := w.acquireCache(ctx, m, in); err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(filepath.Join(dir, "seed.txt")); string(data) != "changed" {
			t.Errorf("an existing cache was reseeded: %q", data)
		}
	})
}

// TestCacheSubdirStaysInCache: source= of a cache mount is resolved inside
// the cache; a symlink pointing out of it, or a missing source, is an error
// (BuildKit's testCacheMountSourceEscape).
func TestCacheSubdirStaysInCache(t *testing.T) {
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "ok", "deep"), 0o755))
	must(t, os.Symlink("/etc", filepath.Join(root, "sel")))
	must(t, os.Symlink("../../../../..", filepath.Join(root, "up")))
	must(t, os.WriteFile(filepath.Join(root, "file"), nil, 0o644))
	for _, tc := range []struct {
		sel, want string
	}{
		{"/", root},
		{"ok", filepath.Join(root, "ok")},
		{"ok/deep", filepath.Join(root, "ok", "deep")},
		{"sel", ""},
		{"up", root},
		{"missing", ""},
		{"file", ""},
	} {
		got, err := cacheSubdir(root, llb.Mount{Selector: tc.sel, Dest: "/c"})
		if tc.want == "" {
			if err == nil {
				t.Errorf("source %s: mounted %s, want an error", tc.sel, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("source %s: %s, %v; want %s", tc.sel, got, err, tc.want)
		}
	}
}

func TestCopySubtreeStaysInSource(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace")
	}
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "dir", "deep"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "dir", "keep.txt"), []byte("keep"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "dir", "secret.key"), []byte("hidden"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "file.txt"), []byte("file"), 0o644))
	must(t, os.Symlink("/", filepath.Join(src, "rootlink")))
	must(t, os.Symlink("../../../../../../..", filepath.Join(src, "uplink")))
	w := New(Options{StateDir: t.TempDir()})
	in := &localResult{in: fileop.Input{Root: src, Local: true, Excludes: []string{"**/*.key"}}}
	cases := []struct {
		sel       string
		wantFiles []string
		wantFile  string
		wantErr   bool
	}{
		{sel: "/dir", wantFiles: []string{"deep", "keep.txt"}},
		{sel: "/file.txt", wantFile: "file"},
		// The symlinks resolve inside the context: they are its root.
		{sel: "/rootlink", wantFiles: []string{"dir", "file.txt", "rootlink", "uplink"}},
		{sel: "/uplink", wantFiles: []string{"dir", "file.txt", "rootlink", "uplink"}},
		{sel: "/rootlink/etc/passwd", wantErr: true},
		{sel: "/missing", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.sel, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "src")
			err := w.copySubtree(context.Background(), in, c.sel, dst)
			if c.wantErr {
				if err == nil {
					t.Fatalf("copySubtree(%s) succeeded, want an error", c.sel)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.wantFile != "" {
				data, err := os.ReadFile(dst)
				if err != nil || string(data) != c.wantFile {
					t.Errorf("got %q, %v; want %q", data, err, c.wantFile)
				}
				return
			}
			ents, err := os.ReadDir(dst)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if strings.Join(names, ",") != strings.Join(c.wantFiles, ",") {
				t.Errorf("entries %v, want %v", names, c.wantFiles)
			}
		})
	}
}

func TestSecretMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown the secret file")
	}
	w := New(Options{StateDir: t.TempDir(), Secrets: SecretMap{"tok": []byte("s3cr3t")}})
	ctx := context.Background()
	cases := []struct {
		name     string
		m        llb.Mount
		wantEnv  []string
		wantFile bool
		wantErr  bool
	}{
		{name: "file", m: llb.Mount{Type: llb.MountSecret, SecretID: "tok", Dest: "/run/secrets/tok", Mode: u32(0o440), UID: intp(5), GID: intp(6)}, wantFile: true},
		{name: "env", m: llb.Mount{Type: llb.MountSecret, SecretID: "tok", SecretEnv: "TOKEN"}, wantEnv: []string{"TOKEN=s3cr3t"}},
		{name: "env and file", m: llb.Mount{Type: llb.MountSecret, SecretID: "tok", SecretEnv: "TOKEN", Dest: "/t"}, wantEnv: []string{"TOKEN=s3cr3t"}, wantFile: true},
		{name: "missing optional", m: llb.Mount{Type: llb.MountSecret, SecretID: "nope", Dest: "/run/secrets/nope"}},
		{name: "missing required", m: llb.Mount{Type: llb.MountSecret, SecretID: "nope", Dest: "/x", Required: true}, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			setup, cleanup, err := w.secretMount(ctx, c.m)
			if cleanup != nil {
				defer cleanup()
			}
			if c.wantErr {
				// BuildKit's wording (testSecretRequiredWithoutValue).
				if err == nil || !errors.Is(err, ErrSecretNotFound) || !strings.Contains(err.Error(), "secret nope: not found") {
					t.Fatalf("err = %v, want secret nope: not found", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(setup.env) != 0 || strings.Join(setup.secretEnv, ",") != strings.Join(c.wantEnv, ",") {
				t.Errorf("env %v, secret env %v; want secret env %v", setup.env, setup.secretEnv, c.wantEnv)
			}
			if !c.wantFile {
				if len(setup.mounts) != 0 {
					t.Errorf("mounts %v, want none", setup.mounts)
				}
				return
			}
			if len(setup.mounts) != 1 || setup.mounts[0].Target != c.m.Dest {
				t.Fatalf("mounts %v, want one at %s", setup.mounts, c.m.Dest)
			}
			mt := setup.mounts[0]
			if !hasOpt(mt.Options, "ro") {
				t.Errorf("secret mount options %v lack ro", mt.Options)
			}
			data, err := os.ReadFile(mt.Source)
			if err != nil || string(data) != "s3cr3t" {
				t.Errorf("secret file: %q, %v", data, err)
			}
			fi, _ := os.Stat(mt.Source)
			wantMode := os.FileMode(0o400)
			if c.m.Mode != nil {
				wantMode = os.FileMode(*c.m.Mode)
			}
			if fi.Mode().Perm() != wantMode {
				t.Errorf("mode %o, want %o", fi.Mode().Perm(), wantMode)
			}
			if c.m.UID != nil {
				if uid, gid := ownerOf(t, mt.Source); uid != *c.m.UID || gid != *c.m.GID {
					t.Errorf("owner %d:%d", uid, gid)
				}
			}
			cleanup()
			if _, err := os.Stat(mt.Source); !os.IsNotExist(err) {
				t.Errorf("secret file still there after cleanup: %v", err)
			}
		})
	}
}

func TestSSHMountProxiesAgent(t *testing.T) {
	dir := t.TempDir()
	agent := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", agent)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Write([]byte("echo:" + line))
			}()
		}
	}()
	w := New(Options{StateDir: t.TempDir(), SSH: map[string]string{"default": agent}})
	setup, cleanup, err := w.sshMount(context.Background(), llb.Mount{Type: llb.MountSSH, SecretID: "default", Dest: "/run/buildkit/ssh_agent.0"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(setup.env, ",") != "SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0" {
		t.Errorf("env %v", setup.env)
	}
	if len(setup.mounts) != 1 {
		t.Fatalf("mounts %v", setup.mounts)
	}
	fi, err := os.Stat(setup.mounts[0].Source)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("proxy socket %v, %v: want a 0600 socket", fi, err)
	}
	for i := range 3 {
		c, err := net.Dial("unix", setup.mounts[0].Source)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("hello\n"))
		got, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || got != "echo:hello\n" {
			t.Errorf("connection %d: got %q, %v", i, got, err)
		}
	}
	// A connection left open does not stop the cleanup.
	open, err := net.Dial("unix", setup.mounts[0].Source)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	cleanup()
	if _, err := os.Stat(setup.mounts[0].Source); !os.IsNotExist(err) {
		t.Errorf("proxy socket left after cleanup: %v", err)
	}

	// Missing agents: optional mounts are skipped, required ones fail.
	if s, _, err := w.sshMount(context.Background(), llb.Mount{SecretID: "other", Dest: "/x"}); err != nil || len(s.mounts) != 0 {
		t.Errorf("optional missing ssh: %v, %v", s, err)
	}
	if _, _, err := w.sshMount(context.Background(), llb.Mount{SecretID: "other", Dest: "/x", Required: true}); err == nil {
		t.Error("required missing ssh succeeded")
	}
}

func TestAddEnv(t *testing.T) {
	t.Parallel()
	got := addEnv([]string{"PATH=/bin", "SSH_AUTH_SOCK=/mine"}, []string{"SSH_AUTH_SOCK=/run/x", "TOKEN=a", "TOKEN=b"})
	if want := "PATH=/bin,SSH_AUTH_SOCK=/mine,TOKEN=a"; strings.Join(got, ",") != want {
		t.Errorf("addEnv = %v, want %s", got, want)
	}
}

func hasOpt(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ownerOf(t *testing.T, p string) (int, int) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return int(st.Uid), int(st.Gid)
}

// TestReplaceEnv: a secret env var replaces the step's own value (issue 10
// #2); addEnv keeps it.
func TestReplaceEnv(t *testing.T) {
	t.Parallel()
	env := []string{"PATH=/bin", "TOKEN=public"}
	if got := strings.Join(replaceEnv(env, []string{"TOKEN=secret"}), ","); got != "PATH=/bin,TOKEN=secret" {
		t.Errorf("replaceEnv = %s", got)
	}
	if got := strings.Join(addEnv(env, []string{"TOKEN=secret"}), ","); got != "PATH=/bin,TOKEN=public" {
		t.Errorf("addEnv = %s", got)
	}
}
