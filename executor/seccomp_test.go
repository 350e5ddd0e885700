package executor

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// buildProbe builds testdata/seccompprobe as a static binary into root.
func buildProbe(t *testing.T, root string) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go tool to build the probe")
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(root, "bin", "probe"), "./testdata/seccompprobe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the probe: %v\n%s", err, out)
	}
}

// TestSeccompProfile runs a static Go program in the sandbox that tries
// each class of call Docker's default profile refuses: all fail with
// EPERM under the sandbox (clone3 with ENOSYS, so that libcs fall back
// to clone), while threads, fork+exec, sockets and the shell keep
// working; --security=insecure lifts the filter.
func TestSeccompProfile(t *testing.T) {
	e, root := busyboxExecutor(t)
	os.MkdirAll(filepath.Join(root, "mnt"), 0o755)
	buildProbe(t, root)
	parse := func(out string) map[string]string {
		m := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if k, v, ok := strings.Cut(l, ": "); ok {
				m[k] = v
			}
		}
		return m
	}
	r := run(t, e, Spec{Rootfs: bindRoot(root), Args: []string{"/bin/probe"}})
	if r.err != nil {
		t.Fatalf("%v: %s", r.err, r.stderr)
	}
	got := parse(r.stdout)
	for name, want := range map[string]string{
		"unshare-user": "EPERM", "unshare-mount": "EPERM", "clone-newuser": "EPERM", "clone3": "ENOSYS",
		"mount": "EPERM", "add_key": "EPERM", "keyctl": "EPERM", "bpf": "EPERM",
		"perf_event_open": "EPERM", "kexec_load": "EPERM", "personality-norandom": "EPERM",
		"socket-vsock":      "EPERM",
		"personality-query": "ok", "socket-inet": "ok", "threads": "ok", "fork-exec": "ok",
	} {
		if got[name] != want {
			t.Errorf("sandbox: %s = %q, want %q", name, got[name], want)
		}
	}

	// The shell and the classic unshare/mount path the issue tried.
	r = run(t, e, Spec{Rootfs: bindRoot(root), Args: sh(`grep Seccomp: /proc/self/status; ls / | wc -l; unshare -Urm true 2>&1 || echo refused`)})
	if r.err != nil {
		t.Fatalf("%v: %s", r.err, r.stderr)
	}
	if !strings.Contains(r.stdout, "Seccomp:\t2") || !strings.Contains(r.stdout, "refused") {
		t.Errorf("sandbox shell: %q, want Seccomp 2 and unshare refused", r.stdout)
	}

	// Insecure: no filter, so the calls the capabilities allow succeed.
	r = run(t, e, Spec{Rootfs: bindRoot(root), Security: SecurityInsecure, Args: []string{"/bin/probe"}})
	if r.err != nil {
		t.Fatalf("insecure: %v: %s", r.err, r.stderr)
	}
	got = parse(r.stdout)
	// (unshare of a user namespace is EINVAL in a threaded Go program anyway.)
	for _, name := range []string{"clone-newuser", "keyctl", "add_key", "personality-norandom"} {
		if got[name] != "ok" {
			t.Errorf("insecure: %s = %q, want ok", name, got[name])
		}
	}
	r = run(t, e, Spec{Rootfs: bindRoot(root), Security: SecurityInsecure, Args: []string{"grep", "Seccomp:", "/proc/self/status"}})
	if !strings.Contains(r.stdout, "Seccomp:\t0") {
		t.Errorf("insecure: %q, want Seccomp 0", r.stdout)
	}
}

// TestSeccompUnderQEMU runs the probe built for another architecture
// under qemu-user in the sandbox, as a foreign-platform RUN does: qemu is
// a host process, so the host profile filters its translated calls; Go's
// runtime under emulation (threads, fork+exec) works and the refused
// classes stay refused.
func TestSeccompUnderQEMU(t *testing.T) {
	requireRoot(t)
	goarch, qemu := "arm64", "/usr/bin/qemu-aarch64-static"
	if runtime.GOARCH == "arm64" {
		goarch, qemu = "amd64", "/usr/bin/qemu-x86_64-static"
	}
	data, err := os.ReadFile(qemu)
	if err != nil {
		t.Skipf("needs %s (qemu-user-static)", qemu)
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go tool to build the probe")
	}
	e := newExecutor(t)
	root := busyboxRoot(t, nil)
	if err := os.WriteFile(filepath.Join(root, "bin", "qemu"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(root, "bin", "probe"), "./testdata/seccompprobe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the probe: %v\n%s", err, out)
	}
	r := run(t, e, Spec{Rootfs: bindRoot(root), Args: []string{"/bin/qemu", "/bin/probe"}})
	if r.err != nil {
		t.Fatalf("%v: %s", r.err, r.stderr)
	}
	for _, want := range []string{"threads: ok", "fork-exec: ok", "mount: EPERM", "unshare-user: EPERM", "personality-norandom: EPERM"} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("under qemu: no %q in\n%s", want, r.stdout)
		}
	}
	// qemu itself does not emulate some (ENOSYS); none may succeed.
	for _, refused := range []string{"clone-newuser", "keyctl", "add_key", "bpf", "perf_event_open", "kexec_load"} {
		if strings.Contains(r.stdout, refused+": ok\n") {
			t.Errorf("under qemu: %s succeeded\n%s", refused, r.stdout)
		}
	}
}
