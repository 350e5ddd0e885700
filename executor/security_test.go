package executor

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// statusField returns the value of a /proc/self/status line printed by the
// sandboxed command.
func statusField(t *testing.T, status, key string) string {
	t.Helper()
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in status:\n%s", key, status)
	return ""
}

func TestCapabilitiesAndNoNewPrivs(t *testing.T) {
	requireRoot(t)
	e := newExecutor(t)
	root := busyboxRoot(t, map[string]string{"/etc/passwd": "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n"})
	def := fmt.Sprintf("%016x", capMask())
	own, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	// Insecure keeps whatever the builder itself has.
	full := statusField(t, string(own), "CapBnd")
	for _, tc := range []struct {
		name               string
		user               string
		sec                Security
		eff, prm, inh, bnd string
		amb                string
		noNewPrivs         string
	}{
		{"root sandbox", "", SecuritySandbox, def, def, def, def, "0000000000000000", "1"},
		{"user sandbox", "nobody", SecuritySandbox, "0000000000000000", "0000000000000000", def, def, "0000000000000000", "1"},
		{"root insecure", "", SecurityInsecure, full, full, "", full, "0000000000000000", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, e, Spec{Rootfs: bindRoot(root), User: tc.user, Security: tc.sec, Args: []string{"cat", "/proc/self/status"}})
			if r.err != nil {
				t.Fatalf("%v: %s", r.err, r.stderr)
			}
			for _, f := range []struct{ key, want string }{
				{"CapEff", tc.eff}, {"CapPrm", tc.prm}, {"CapInh", tc.inh}, {"CapBnd", tc.bnd},
				{"CapAmb", tc.amb}, {"NoNewPrivs", tc.noNewPrivs},
			} {
				if f.want == "" {
					continue
				}
				if got := statusField(t, r.stdout, f.key); got != f.want {
					t.Errorf("%s = %s, want %s", f.key, got, f.want)
				}
			}
		})
	}
}

// scriptCase is a shell script run in a sandbox with security mode sec,
// expected to succeed (ok) or fail.
type scriptCase struct {
	name   string
	script string
	sec    Security
	ok     bool
}

// runScriptCases runs each case in a fresh sandbox on a busybox root.
func runScriptCases(t *testing.T, cases []scriptCase) {
	t.Helper()
	e, root := busyboxExecutor(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, e, Spec{Rootfs: bindRoot(root), Security: tc.sec, Args: sh(tc.script)})
			if tc.ok && r.err != nil {
				t.Fatalf("%q failed: %v: %s", tc.script, r.err, r.stderr)
			}
			if !tc.ok && r.err == nil {
				t.Fatalf("%q succeeded, want failure", tc.script)
			}
		})
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	runScriptCases(t, []scriptCase{
		{"kcore is empty", "test ! -s /proc/kcore && [ -z \"$(head -c 16 /proc/kcore)\" ]", SecuritySandbox, true},
		{"keys masked", "[ -z \"$(cat /proc/keys)\" ]", SecuritySandbox, true},
		{"sysrq-trigger read-only", "echo h > /proc/sysrq-trigger", SecuritySandbox, false},
		{"proc/sys read-only", "echo builder > /proc/sys/kernel/hostname", SecuritySandbox, false},
		{"proc/sys readable", "cat /proc/sys/kernel/ostype", SecuritySandbox, true},
		{"sys/firmware empty", "[ -z \"$(ls -A /sys/firmware)\" ]", SecuritySandbox, true},
		{"insecure: kcore visible", "test -s /proc/kcore || test -n \"$(ls /proc/keys)\"", SecurityInsecure, true},
		{"insecure: proc/sys writable mount", "grep -q ' /proc/sys ' /proc/self/mountinfo", SecurityInsecure, false},
	})
}

func TestDevices(t *testing.T) {
	runScriptCases(t, []scriptCase{
		{"standard devices work", "echo x > /dev/null && head -c 4 /dev/zero | wc -c | grep -q 4 && head -c 4 /dev/urandom > /dev/null", SecuritySandbox, true},
		{"mknod allowed", "mknod /tmpnode c 1 3 && rm /tmpnode", SecuritySandbox, true},
		{"disk node on rootfs not openable", "mknod /sda b 8 0; head -c 1 /sda > /dev/null; r=$?; rm -f /sda; exit $r", SecuritySandbox, false},
		{"new node in /dev not openable", "mknod /dev/mem2 c 1 1 && head -c 1 /dev/mem2 > /dev/null", SecuritySandbox, false},
		{"null copy in /dev not openable", "mknod /dev/null2 c 1 3 && echo x > /dev/null2", SecuritySandbox, false},
		{"insecure: new null works", "mknod /dev/null2 c 1 3 && echo x > /dev/null2", SecurityInsecure, true},
	})
}

func TestIOWriteAccounted(t *testing.T) {
	e, root := busyboxExecutor(t)
	// Buffered writes: v1 blkio does not see them, the task counters do.
	r := run(t, e, Spec{Rootfs: bindRoot(root), Args: sh("dd if=/dev/zero of=/big bs=1M count=8 2>/dev/null && cat /big > /dev/null")})
	if r.err != nil {
		t.Fatalf("%v: %s", r.err, r.stderr)
	}
	if r.stats.IOWrite < 8<<20 {
		t.Errorf("io write %d, want >= 8MiB", r.stats.IOWrite)
	}
}

func TestUnknownSecurity(t *testing.T) {
	e, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Run(t.Context(), Spec{Rootfs: []Mount{{Type: "bind", Source: "/", Target: "/"}}, Args: []string{"true"}, Security: "bogus"})
	if err == nil || !strings.Contains(err.Error(), `unknown security mode "bogus"`) {
		t.Fatalf("err = %v", err)
	}
}
