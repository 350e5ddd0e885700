package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the sandbox init.
	MaybeInit()
	os.Exit(m.Run())
}

var busyboxApplets = []string{"sh", "echo", "cat", "ls", "id", "hostname", "ps", "sleep", "mount",
	"wc", "pwd", "mkdir", "awk", "seq", "head", "stat", "true", "false", "touch", "env", "kill", "grep", "dd", "unshare"}

func requireRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("sandbox tests are slow; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("sandbox tests need root")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static)")
	}
}

// busyboxRoot builds a minimal root filesystem: /bin/busybox and its
// applets, nothing else unless files are given (path -> content).
func busyboxRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func bindRoot(root string) []Mount {
	return []Mount{{Type: "bind", Source: root, Target: "/", Options: []string{"rbind"}}}
}

type runResult struct {
	stdout, stderr string
	stats          Stats
	err            error
}

func newExecutor(t *testing.T) *Executor {
	t.Helper()
	e, err := New(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	e.cgroupParent = testCgroupParent()
	t.Cleanup(func() { checkClean(t, e) })
	return e
}

// busyboxExecutor skips t unless sandbox tests can run, and returns a new
// executor and a busybox root filesystem without extra files.
func busyboxExecutor(t *testing.T) (*Executor, string) {
	t.Helper()
	requireRoot(t)
	return newExecutor(t), busyboxRoot(t, nil)
}

func run(t *testing.T, e *Executor, spec Spec) runResult {
	t.Helper()
	var out, errOut bytes.Buffer
	if spec.Stdout == nil {
		spec.Stdout = &out
	}
	if spec.Stderr == nil {
		spec.Stderr = &errOut
	}
	if spec.Env == nil {
		spec.Env = []string{"PATH=/bin"}
	}
	st, err := e.Run(context.Background(), spec)
	return runResult{out.String(), errOut.String(), st, err}
}

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

// checkClean asserts that no mount, cgroup or process of the executor is
// left on the host.
func checkClean(t *testing.T, e *Executor) {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), e.stateDir) {
		t.Errorf("mounts under %s left on the host:\n%s", e.stateDir, mi)
	}
	if left := leftoverCgroups(t); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
	if procs := sandboxProcs(t); len(procs) > 0 {
		t.Errorf("sandbox processes left: %v", procs)
	}
	entries, _ := os.ReadDir(e.stateDir)
	for _, ent := range entries {
		if ent.Name() != "leases" { // the live process's lease stays
			t.Errorf("state directory not empty: %v", entries)
			break
		}
	}
}

func leftoverCgroups(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[1] == "" || strings.HasPrefix(parts[1], "name=") {
			continue
		}
		// Only this test binary's cgroups: other packages' tests run
		// builds on the host at the same time.
		for _, ctl := range strings.Split(parts[1], ",") {
			m, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", ctl, parts[2], testCgroupParent(), "builder-*"))
			left = append(left, m...)
		}
	}
	return left
}

// descendsFromUs reports whether process pid is a descendant of this test
// process.
func descendsFromUs(pid string) bool {
	me := strconv.Itoa(os.Getpid())
	for i := 0; i < 64 && pid != "" && pid != "0" && pid != "1"; i++ {
		stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
		if err != nil {
			return false
		}
		// The fields after the command name, which is in parentheses.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) < 2 {
			return false
		}
		pid = fields[1]
		if pid == me {
			return true
		}
	}
	return false
}

// testCgroupParent is where this test binary's sandboxes put their cgroups.
func testCgroupParent() string { return fmt.Sprintf("executor-test-%d", os.Getpid()) }

// sandboxProcs lists processes started as the sandbox init or running a
// busybox from a test rootfs.
func sandboxProcs(t *testing.T) []string {
	t.Helper()
	var out []string
	deadline := time.Now().Add(time.Second)
	for {
		out = out[:0]
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			if e.Name()[0] < '0' || e.Name()[0] > '9' {
				continue
			}
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
			if !descendsFromUs(e.Name()) {
				continue // another package's test builds run at the same time
			}
			if bytes.HasPrefix(cmdline, []byte(initArg0)) || strings.Contains(exe, "/root/bin/busybox") {
				out = append(out, e.Name()+":"+strings.ReplaceAll(string(cmdline), "\x00", " "))
			}
		}
		if len(out) == 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExitCodes(t *testing.T) {
	e, root := busyboxExecutor(t)
	for _, tc := range []struct {
		name   string
		script string
		code   int
		signal string
	}{
		{"success", "true", 0, ""},
		{"background children die with the step", "sleep 100 & sleep 100 & true", 0, ""},
		{"exit 3", "exit 3", 3, ""},
		{"sigkill", "kill -9 $$", 137, "SIGKILL"},
		{"sigterm", "kill -TERM $$", 143, "SIGTERM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := run(t, e, Spec{Rootfs: bindRoot(root), Args: sh(tc.script)})
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Run took %v", d)
			}
			if tc.code == 0 {
				if r.err != nil {
					t.Fatalf("err = %v, stderr %q", r.err, r.stderr)
				}
				return
			}
			var ee *ExitError
			if !errors.As(r.err, &ee) {
				t.Fatalf("err = %v (%T), want *ExitError", r.err, r.err)
			}
			if ee.Code != tc.code || ee.Signal != tc.signal || ee.OOMKilled {
				t.Errorf("ExitError = %+v, want code %d signal %q", ee, tc.code, tc.signal)
			}
		})
	}
	// Commands that cannot start: docker's 127 and 126.
	plain := busyboxRoot(t, map[string]string{"notexec": "#!/bin/sh\n"})
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"nosuchcommand"}, CodeNotFound, "executable file not found"},
		{[]string{"/bin/nosuch"}, CodeNotFound, "no such file or directory"},
		{[]string{"/notexec"}, CodeNotExecutable, "permission denied"},
		{[]string{"/bin"}, CodeNotExecutable, "permission denied"},
	} {
		r := run(t, e, Spec{Rootfs: bindRoot(plain), Args: tc.args})
		var ee *ExitError
		var se *StartError
		if r.err == nil || errors.As(r.err, &ee) || !errors.As(r.err, &se) || se.Code != tc.code || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("%v: err = %v (%T), want a *StartError with code %d and %q", tc.args, r.err, r.err, tc.code, tc.want)
		}
	}
}

// notifyWriter signals when a marker shows up in the stream.
type notifyWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	seen   chan struct{}
	once   sync.Once
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.marker) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func TestOutputStreamsWhileRunning(t *testing.T) {
	e, root := busyboxExecutor(t)
	w := &notifyWriter{marker: "first", seen: make(chan struct{})}
	var errOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := e.Run(context.Background(), Spec{Rootfs: bindRoot(root), Env: []string{"PATH=/bin"},
			Args: sh("echo first; echo err >&2; sleep 2; echo second"), Stdout: w, Stderr: &errOut})
		done <- err
	}()
	select {
	case <-w.seen:
	case err := <-done:
		t.Fatalf("Run returned (%v) before the first line was streamed", err)
	case <-time.After(5 * time.Second):
		t.Fatal("first line not streamed")
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	default:
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := w.buf.String(); got != "first\nsecond\n" {
		t.Errorf("stdout = %q", got)
	}
	if errOut.String() != "err\n" {
		t.Errorf("stderr = %q", errOut.String())
	}
}

func TestStdin(t *testing.T) {
	e, root := busyboxExecutor(t)
	for _, tc := range []struct {
		name  string
		stdin *strings.Reader
		want  string
	}{
		{"given", strings.NewReader("hello stdin"), "hello stdin"},
		{"devnull", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := Spec{Rootfs: bindRoot(root), Args: []string{"cat"}}
			if tc.stdin != nil {
				spec.Stdin = tc.stdin
			}
			r := run(t, e, spec)
			if r.err != nil || r.stdout != tc.want {
				t.Errorf("got %q, %v; want %q", r.stdout, r.err, tc.want)
			}
		})
	}
}

const passwd = "root:x:0:0:root:/root:/bin/sh\nfoo:x:1000:1000:Foo:/home/foo:/bin/sh\n"
const group = "root:x:0:root\nfoo:x:1000:\nextra:x:2000:bar,foo\nother:x:3000:\n"

func TestEnvCwdUser(t *testing.T) {
	requireRoot(t)
	e := newExecutor(t)
	for _, tc := range []struct {
		name    string
		spec    Spec
		want    string
		wantErr string
	}{
		{"env exactly", Spec{Env: []string{"A=b", "PATH=/bin"}, Args: []string{"env"}}, "A=b\nPATH=/bin\nHOME=/root\n", ""},
		{"home kept", Spec{Env: []string{"HOME=/x", "PATH=/bin"}, Args: []string{"env"}}, "HOME=/x\nPATH=/bin\n", ""},
		{"cwd created", Spec{Cwd: "/work/dir", Args: sh("pwd")}, "/work/dir\n", ""},
		{"root", Spec{Args: []string{"id"}}, "uid=0(root) gid=0(root) groups=0(root)\n", ""},
		{"name", Spec{User: "foo", Args: sh("id; echo $HOME")}, "uid=1000(foo) gid=1000(foo) groups=1000(foo),2000(extra)\n/home/foo\n", ""},
		{"name:group", Spec{User: "foo:other", Args: []string{"id"}}, "uid=1000(foo) gid=3000(other) groups=3000(other)\n", ""},
		{"uid:gid", Spec{User: "1234:5678", Args: sh("id -u; id -g; echo $HOME")}, "1234\n5678\n/\n", ""},
		{"unknown user", Spec{User: "nobody2", Args: []string{"id"}}, "", "unable to find user nobody2: no matching entries in passwd file"},
		{"unknown group", Spec{User: "foo:nogroup", Args: []string{"id"}}, "", "unable to find group nogroup"},
		{"path from env", Spec{Env: []string{"PATH=/opt/tools"}, Args: []string{"mytool"}}, "from opt\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := busyboxRoot(t, map[string]string{"etc/passwd": passwd, "etc/group": group,
				"opt/tools/mytool": "#!/bin/sh\necho from opt\n"})
			if err := os.Chmod(filepath.Join(root, "opt/tools/mytool"), 0o755); err != nil {
				t.Fatal(err)
			}
			tc.spec.Rootfs = bindRoot(root)
			r := run(t, e, tc.spec)
			if tc.wantErr != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", r.err, tc.wantErr)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("err = %v, stderr %q", r.err, r.stderr)
			}
			if r.stdout != tc.want {
				t.Errorf("stdout = %q, want %q", r.stdout, tc.want)
			}
		})
	}
}

func TestCwdOwnedByUser(t *testing.T) {
	requireRoot(t)
	e := newExecutor(t)
	root := busyboxRoot(t, map[string]string{"etc/passwd": passwd, "etc/group": group})
	r := run(t, e, Spec{Rootfs: bindRoot(root), User: "foo", Cwd: "/home/foo/w", Args: sh("touch mine && pwd")})
	if r.err != nil {
		t.Fatalf("%v: %s", r.err, r.stderr)
	}
	for _, p := range []string{"home/foo", "home/foo/w", "home/foo/w/mine"} {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 1000 || st.Gid != 1000 {
			t.Errorf("%s owned by %d:%d, want 1000:1000", p, st.Uid, st.Gid)
		}
	}
}

func TestNamespaces(t *testing.T) {
	e, root := busyboxExecutor(t)
	hostMounts, _ := os.ReadFile("/proc/mounts")
	hostIfaces, _ := os.ReadDir("/sys/class/net")
	var hostNames []string
	for _, i := range hostIfaces {
		hostNames = append(hostNames, i.Name())
	}
	sort.Strings(hostNames)

	t.Run("hostname", func(t *testing.T) {
		r := run(t, e, Spec{Rootfs: bindRoot(root), Hostname: "myhost", Args: sh("hostname; cat /etc/hostname; grep myhost /etc/hosts | wc -l")})
		if r.err != nil || r.stdout != "myhost\nmyhost\n1\n" {
			t.Errorf("got %q, %v", r.stdout, r.err)
		}
		r = run(t, e, Spec{Rootfs: bindRoot(root), Args: []string{"hostname"}})
		if r.err != nil || r.stdout != DefaultHostname+"\n" {
			t.Errorf("default hostname: got %q, %v", r.stdout, r.err)
		}
	})
	t.Run("pid", func(t *testing.T) {
		r := run(t, e, Spec{Rootfs: bindRoot(root), Args: sh("ps -o pid,args; true")})
		if r.err != nil {
			t.Fatalf("%v: %s", r.err, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		// header, init, sh, ps
		if len(lines) != 4 || strings.Fields(lines[1])[0] != "1" || !strings.Contains(lines[1], initArg0) {
			t.Errorf("ps shows more than the sandbox:\n%s", r.stdout)
		}
	})
	t.Run("mounts", func(t *testing.T) {
		r := run(t, e, Spec{Rootfs: bindRoot(root), Args: []string{"cat", "/proc/mounts"}})
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.stdout == string(hostMounts) {
			t.Fatal("/proc/mounts is the host's")
		}
		for _, want := range []string{" /proc proc ", " /dev tmpfs ", " /dev/pts devpts ", " /dev/shm tmpfs ", " /sys sysfs ro,", " /etc/resolv.conf ", " /etc/hosts ", " /etc/hostname "} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("/proc/mounts lacks %q:\n%s", want, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "/sys/fs/cgroup") {
			t.Errorf("host mounts visible:\n%s", r.stdout)
		}
	})
	t.Run("dev", func(t *testing.T) {
		r := run(t, e, Spec{Rootfs: bindRoot(root), Args: sh("ls /dev; head -c 4 /dev/urandom | wc -c; echo x > /dev/null; ls /dev/fd/")})
		if r.err != nil {
			t.Fatalf("%v: %s", r.err, r.stderr)
		}
		want := "fd\nfull\nnull\nptmx\npts\nrandom\nshm\nstderr\nstdin\nstdout\ntty\nurandom\nzero\n4\n0\n1\n2\n3\n"
		if r.stdout != want {
			t.Errorf("got %q, want %q", r.stdout, want)
		}
	})
	t.Run("sys read-only", func(t *testing.T) {
		r := run(t, e, Spec{Rootfs: bindRoot(root), Args: sh("touch /sys/x")})
		if r.err == nil || !strings.Contains(r.stderr, "Read-only file system") {
			t.Errorf("writing /sys: %v, %q", r.err, r.stderr)
		}
	})
	t.Run("network none", func(t *testing.T) {
		r := run(t, e, Spec{Rootfs: bindRoot(root), Network: NetworkNone, Args: sh("ls /sys/class/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags")})
		if r.err != nil {
			t.Fatalf("%v: %s", r.err, r.stderr)
		}
		lines := strings.Split(r.stdout, "\n")
		if lines[0] != "lo" || lines[2] != "0x9" {
			t.Errorf("network none: %q (want only lo, up)", r.stdout)
		}
	})
	t.Run("network host", func(t *testing.T) {
		r := run(t, e, Spec{Rootfs: bindRoot(root), Network: NetworkHost, Args: []string{"ls", "/sys/class/net"}})
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got := strings.Fields(r.stdout); strings.Join(got, " ") != strings.Join(hostNames, " ") {
			t.Errorf("host network: %v, want %v", got, hostNames)
		}
	})
}

func TestNoFdLeak(t *testing.T) {
	e, root := busyboxExecutor(t)
	// A descriptor without close-on-exec in the builder must not reach
	// the command either.
	fd, err := syscall.Open("/dev/null", syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	r := run(t, e, Spec{Rootfs: bindRoot(root), Args: sh("ls /proc/$$/fd; true")})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := strings.Fields(r.stdout); strings.Join(got, " ") != "0 1 2" {
		t.Errorf("fds of the command: %v, want 0 1 2", got)
	}
}

func TestStubsRemoved(t *testing.T) {
	e, root := busyboxExecutor(t)
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "in"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, e, Spec{Rootfs: bindRoot(root),
		Mounts: []Mount{
			{Type: "bind", Source: hostDir, Target: "/mnt/data", Options: []string{"rbind", "ro"}},
			{Type: "tmpfs", Source: "tmpfs", Target: "/tmp/scratch", Options: []string{"size=1m"}},
		},
		Args: sh("cat /mnt/data/in; echo x > /tmp/scratch/f; ! touch /mnt/data/no 2>/dev/null && echo ro; echo out > /written")})
	if r.err != nil {
		t.Fatalf("%v: %s", r.err, r.stderr)
	}
	if r.stdout != "dataro\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	entries, _ := os.ReadDir(root)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// /proc, /dev and /sys stay as empty mount points, as in BuildKit.
	if strings.Join(names, " ") != "bin dev proc sys written" {
		t.Errorf("rootfs holds %v, want only bin, the kept mount points and written", names)
	}
	for _, d := range []string{"dev", "proc", "sys"} {
		if entries, err := os.ReadDir(filepath.Join(root, d)); err != nil || len(entries) != 0 {
			t.Errorf("mount point %s: %v %v, want an empty dir", d, entries, err)
		}
	}
	// A command that writes nothing leaves a root that has the mount
	// points exactly as it was, times of the directories that held stubs
	// included.
	clean := busyboxRoot(t, nil)
	for _, d := range []string{"dev", "proc", "sys"} {
		if err := os.Mkdir(filepath.Join(clean, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Unix(1_000_000_000, 0)
	if err := os.Chtimes(clean, old, old); err != nil {
		t.Fatal(err)
	}
	if r := run(t, e, Spec{Rootfs: bindRoot(clean), Args: []string{"true"}}); r.err != nil {
		t.Fatal(r.err)
	}
	fi, err := os.Stat(clean)
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(clean); len(entries) != 4 || !fi.ModTime().Equal(old) {
		t.Errorf("rootfs after a no-op run: %v, mtime %v (want bin dev proc sys, mtime %v)", entries, fi.ModTime(), old)
	}
}

func TestMountTargetSymlinkStaysInRoot(t *testing.T) {
	e, root := busyboxExecutor(t)
	outside := filepath.Join(t.TempDir(), "outside")
	// An absolute symlink pointing at a host path resolves inside the root.
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel("/", outside)
	r := run(t, e, Spec{Rootfs: bindRoot(root),
		Mounts: []Mount{{Type: "tmpfs", Source: "tmpfs", Target: "/link/m"}},
		Args:   sh("echo hi > /link/m/f && mount | grep -c ' on /" + rel + "/m type tmpfs'")})
	if r.err != nil {
		t.Fatalf("%v: %s", r.err, r.stderr)
	}
	if _, err := os.Lstat(outside); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount target escaped the rootfs: %s exists (%v)", outside, err)
	}
	if r.stdout != "1\n" {
		t.Errorf("mount not at the in-root path: %q", r.stdout)
	}
}

func TestOverlayRootfs(t *testing.T) {
	requireRoot(t)
	e := newExecutor(t)
	lower := busyboxRoot(t, map[string]string{"etc/passwd": passwd})
	dir := t.TempDir()
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	etcBefore, _ := os.Stat(filepath.Join(lower, "etc"))
	r := run(t, e, Spec{
		Rootfs: []Mount{{Type: "overlay", Source: "overlay", Target: "/",
			Options: []string{"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}}},
		Args: sh("echo hi > /hello && mkdir -p /a/b && cat /etc/hosts > /dev/null && ls /proc/self > /dev/null"),
	})
	if r.err != nil {
		t.Fatalf("%v: %s", r.err, r.stderr)
	}
	var got []string
	_ = filepath.Walk(upper, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p != upper {
			rel, _ := filepath.Rel(upper, p)
			got = append(got, rel)
		}
		return nil
	})
	// etc exists in the lower dir: the /etc/hosts stub copied it up;
	// with the stub gone only an unchanged copy of the directory remains.
	want := []string{"a", "a/b", "dev", "etc", "hello", "proc", "sys"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("upper dir holds %v, want %v", got, want)
	}
	if entries, _ := os.ReadDir(filepath.Join(upper, "etc")); len(entries) != 0 {
		t.Errorf("upper etc not empty: %v", entries)
	}
	etcAfter, err := os.Stat(filepath.Join(upper, "etc"))
	if err == nil && !etcAfter.ModTime().Equal(etcBefore.ModTime()) {
		t.Errorf("etc mtime changed by stubs: %v -> %v", etcBefore.ModTime(), etcAfter.ModTime())
	}
}

func TestLimitsAndStats(t *testing.T) {
	e, root := busyboxExecutor(t)
	t.Run("oom", func(t *testing.T) {
		r := run(t, e, Spec{Rootfs: bindRoot(root), Limits: Limits{Memory: 32 << 20},
			Args: []string{"awk", `BEGIN { s = "xxxxxxxxxxxxxxxx"; while (1) s = s s }`}})
		var ee *ExitError
		if !errors.As(r.err, &ee) || !ee.OOMKilled || ee.MemoryLimit != 32<<20 {
			t.Fatalf("err = %v (%+v), want OOM kill", r.err, ee)
		}
		if r.stats.MemoryPeak < 16<<20 || r.stats.MemoryPeak > 33<<20 {
			t.Errorf("memory peak %d", r.stats.MemoryPeak)
		}
	})
	t.Run("pids", func(t *testing.T) {
		r := run(t, e, Spec{Rootfs: bindRoot(root), Limits: Limits{PidsLimit: 24},
			Args: sh("for i in $(seq 1 200); do sleep 30 & done; wait")})
		if r.err == nil {
			t.Fatal("fork loop succeeded despite the pids limit")
		}
		if r.stats.PidsPeak == 0 || r.stats.PidsPeak > 24 {
			t.Errorf("pids peak %d, want 1..24", r.stats.PidsPeak)
		}
	})
	t.Run("cpu stats", func(t *testing.T) {
		r := run(t, e, Spec{Rootfs: bindRoot(root), Limits: Limits{CPUs: 1.5, CPUShares: 512, CpusetCPUs: "0", PidsLimit: 100, Memory: 256 << 20},
			Args: sh("i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; dd if=/dev/zero of=/f bs=64k count=16 2>/dev/null; rm /f")})
		if r.err != nil {
			t.Fatalf("%v: %s", r.err, r.stderr)
		}
		s := r.stats
		if s.CPUUser+s.CPUSystem < 100*time.Millisecond || s.Wall < s.CPUUser/2 || s.MemoryPeak == 0 || s.PidsPeak == 0 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("cpu quota", func(t *testing.T) {
		r := run(t, e, Spec{Rootfs: bindRoot(root), Limits: Limits{CPUs: 0.2},
			Args: sh("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")})
		if r.err != nil {
			t.Fatal(r.err)
		}
		// A fifth of a core: wall time is several times the CPU time.
		if cpu := r.stats.CPUUser + r.stats.CPUSystem; r.stats.Wall < 3*cpu {
			t.Errorf("quota not applied: wall %v, cpu %v", r.stats.Wall, cpu)
		}
	})
}

func TestCancel(t *testing.T) {
	e, root := busyboxExecutor(t)
	for _, tc := range []struct {
		name   string
		script string
	}{
		{"sleep", "sleep 100"},
		{"ignores TERM with children", "trap '' TERM; sleep 100 & sleep 100 & while true; do :; done"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(500*time.Millisecond, cancel)
			start := time.Now()
			_, err := e.Run(ctx, Spec{Rootfs: bindRoot(root), Env: []string{"PATH=/bin"}, Args: sh(tc.script),
				Mounts: []Mount{{Type: "tmpfs", Source: "tmpfs", Target: "/scratch"}}})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			if d := time.Since(start) - 500*time.Millisecond; d > 2*time.Second {
				t.Errorf("Run returned %v after cancellation", d)
			}
			checkClean(t, e)
		})
	}
	if entries, _ := os.ReadDir(root); len(entries) != 1 {
		t.Errorf("rootfs left with %v", entries)
	}
}

func TestRunErrors(t *testing.T) {
	e, root := busyboxExecutor(t)
	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{"no args", Spec{Rootfs: bindRoot(root)}, "no command"},
		{"no rootfs", Spec{Args: []string{"true"}}, "no root filesystem"},
		{"bad network", Spec{Rootfs: bindRoot(root), Args: []string{"true"}, Network: "bridge"}, "unknown network mode"},
		{"missing bind source", Spec{Rootfs: bindRoot(root), Args: []string{"true"},
			Mounts: []Mount{{Type: "bind", Source: "/nonexistent-src", Target: "/x"}}}, "/nonexistent-src"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, e, tc.spec)
			if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", r.err, tc.want)
			}
		})
	}
	if entries, _ := os.ReadDir(root); len(entries) != 1 {
		t.Errorf("failed setup left %v in the rootfs", entries)
	}
}

func ExampleExitError() {
	fmt.Println(&ExitError{Code: 2})
	fmt.Println(&ExitError{Code: 137, Signal: "SIGKILL"})
	fmt.Println(&ExitError{Code: 137, OOMKilled: true, MemoryLimit: 64 << 20})
	// Output:
	// exit code: 2
	// killed by signal SIGKILL
	// killed: out of memory (limit 64MiB)
}
