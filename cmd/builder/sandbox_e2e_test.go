package main

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireRootE2E skips the end-to-end sandbox tests unless they can run.
func requireRootE2E(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end sandbox tests are slow; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static)")
	}
}

// builderBinary builds cmd/builder into a temporary directory.
func builderBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "builder")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// busyboxContext writes a build context with /bin/busybox and dockerfile.
// The Dockerfile starts with FROM scratch and COPY busybox; the caller's
// lines follow (line 4 onwards), with SHELL set to busybox sh.
func busyboxContext(t *testing.T, lines ...string) string {
	t.Helper()
	dir := t.TempDir()
	df := "FROM scratch\nCOPY busybox /bin/busybox\nSHELL [\"/bin/busybox\", \"sh\", \"-c\"]\n" + strings.Join(lines, "\n") + "\n"
	writeBusyboxContext(t, dir, map[string]string{"Dockerfile": df})
	return dir
}

// writeBusyboxContext writes a build context into dir: the host's
// /bin/busybox as the executable busybox, and files (name -> content).
func writeBusyboxContext(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	all := maps.Clone(files)
	all["busybox"] = string(data)
	writeFiles(t, dir, all)
	if err := os.Chmod(filepath.Join(dir, "busybox"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func buildCmd(bin, root, ctxDir string, flags ...string) *exec.Cmd {
	args := append([]string{"build", "--root", root, "--progress=plain"}, flags...)
	cmd := exec.Command(bin, append(args, ctxDir)...)
	cmd.Env = append(os.Environ(), "PATH=/usr/local/go/bin:/usr/bin:/bin")
	return cmd
}

func runBuild(t *testing.T, bin, root, ctxDir string, flags ...string) (string, error) {
	t.Helper()
	out, err := buildCmd(bin, root, ctxDir, flags...).CombinedOutput()
	return string(out), err
}

// hostLeftovers lists what a build left on the host: mounts under root,
// cgroups under parent (the build's --cgroup-parent: other builds may run
// on the host at the same time), and processes whose command line
// contains marker.
func hostLeftovers(t *testing.T, root, marker, parent string) []string {
	t.Helper()
	var left []string
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, root) {
			left = append(left, "mount: "+l)
		}
	}
	cg, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[1] == "" || strings.HasPrefix(parts[1], "name=") {
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			if parent == "" {
				continue
			}
			for _, pat := range []string{parent} {
				m, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", ctl, parts[2], pat))
				for _, d := range m {
					left = append(left, "cgroup: "+d)
				}
			}
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(cmdline, []byte(marker)) {
			left = append(left, "process: "+e.Name()+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return left
}

func TestSandboxCancel(t *testing.T) {
	requireRootE2E(t)
	bin := builderBinary(t)
	root := t.TempDir()
	marker := fmt.Sprintf("%d", 400000+os.Getpid()%100000)
	ctxDir := busyboxContext(t, "RUN echo one > /one", "RUN busybox sleep "+marker)
	parent := fmt.Sprintf("builder-e2e-cancel-%d", os.Getpid())
	cmd := buildCmd(bin, root, ctxDir, "--cgroup-parent", parent)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if len(hostLeftovers(t, "\x00never\x00", "sleep\x00"+marker, "")) > 0 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("the RUN never started:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("build exited 0 after SIGINT:\n%s", out.String())
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("build took %v to exit after SIGINT", d)
		}
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("build still running 5s after SIGINT:\n%s", out.String())
	}
	if left := hostLeftovers(t, root, "sleep\x00"+marker, parent); len(left) > 0 {
		t.Errorf("left on the host after SIGINT:\n%s", strings.Join(left, "\n"))
	}

	// The steps that finished are cached.
	ctxDir2 := busyboxContext(t, "RUN echo one > /one", "RUN test -f /one")
	if err := os.Rename(filepath.Join(ctxDir2, "Dockerfile"), filepath.Join(ctxDir, "Dockerfile")); err != nil {
		t.Fatal(err)
	}
	got, err := runBuild(t, bin, root, ctxDir)
	if err != nil {
		t.Fatalf("rebuild: %v\n%s", err, got)
	}
	if strings.Count(got, "CACHED") < 2 {
		t.Errorf("rebuild did not reuse COPY and the first RUN:\n%s", got)
	}
}

func TestSandboxBuildFlags(t *testing.T) {
	requireRootE2E(t)
	bin := builderBinary(t)
	root := t.TempDir()
	own := fmt.Sprintf("builder-e2e-parent-%d", os.Getpid())
	for _, tc := range []struct {
		name   string
		lines  []string
		flags  []string
		ok     bool
		expect []string
	}{
		{"hostname", []string{`RUN test "$(hostname)" = buildhost && grep -q buildhost /etc/hostname`}, []string{"--hostname", "buildhost"}, true, nil},
		{"default hostname", []string{`RUN test "$(hostname)" = builder`}, nil, true, nil},
		{"caps", []string{`RUN grep -q "CapEff:.00000000a80425fb" /proc/self/status && grep -q "NoNewPrivs:.1" /proc/self/status`}, nil, true, nil},
		{"insecure not allowed", []string{"RUN --security=insecure true"}, nil, false,
			[]string{"Dockerfile:4", "--allow security.insecure"}},
		{"insecure allowed", []string{`RUN --security=insecure grep -q "NoNewPrivs:.0" /proc/self/status`}, []string{"--allow", "security.insecure"}, true, nil},
		{"oom", []string{"RUN echo start", `RUN busybox awk 'BEGIN { s = "xxxxxxxxxxxxxxxx"; while (1) s = s s }'`}, []string{"--memory", "64m"}, false,
			[]string{"RUN at Dockerfile:5 was killed: out of memory (limit 64MiB)"}},
		{"fork bomb", []string{"RUN for i in $(busybox seq 1 200); do busybox sleep 30 & done; wait"}, []string{"--pids-limit", "20"}, false, nil},
		{"limits in the cgroup", []string{"RUN busybox sleep 3"}, []string{"--memory", "96m", "--cpus", "0.5", "--pids-limit", "33", "--cgroup-parent", own + "/sub"}, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctxDir := busyboxContext(t, tc.lines...)
			limits := make(chan map[string]string, 1)
			if tc.name == "limits in the cgroup" {
				go func() { limits <- watchCgroup(own+"/sub", cgroupWant, 30*time.Second) }()
			}
			start := time.Now()
			flags := append([]string{"--no-cache"}, tc.flags...)
			if !strings.Contains(strings.Join(flags, " "), "--cgroup-parent") {
				flags = append(flags, "--cgroup-parent", own)
			}
			out, err := runBuild(t, bin, root, ctxDir, flags...)
			if tc.ok && err != nil {
				t.Fatalf("build failed: %v\n%s", err, out)
			}
			if !tc.ok && err == nil {
				t.Fatalf("build succeeded, want failure:\n%s", out)
			}
			for _, e := range tc.expect {
				if !strings.Contains(out, e) {
					t.Errorf("output lacks %q:\n%s", e, out)
				}
			}
			if tc.name == "fork bomb" && time.Since(start) > 25*time.Second {
				t.Errorf("fork bomb took %v", time.Since(start))
			}
			if tc.name == "limits in the cgroup" {
				got := <-limits
				for f, want := range cgroupWant {
					if got[f] != want {
						t.Errorf("%s = %q, want %q (all: %v)", f, got[f], want, got)
					}
				}
				if m, _ := filepath.Glob("/sys/fs/cgroup/*/" + own); len(m) > 0 {
					m2, _ := filepath.Glob("/sys/fs/cgroup/*/*/" + own)
					t.Errorf("cgroup parent not removed: %v %v", m, m2)
				}
			}
			if left := hostLeftovers(t, root, ctxDir, own); len(left) > 0 {
				t.Errorf("left on the host:\n%s", strings.Join(left, "\n"))
			}
		})
	}
}

// cgroupWant is what the "limits in the cgroup" case's flags must write.
var cgroupWant = map[string]string{"memory/memory.limit_in_bytes": "100663296", "cpu/cpu.cfs_quota_us": "50000", "pids/pids.max": "33"}

// watchCgroup waits for a builder-* group under parent (in any v1
// hierarchy below the caller's own groups) to hold the limit files of want
// and returns what it last read of them.
func watchCgroup(parent string, want map[string]string, timeout time.Duration) map[string]string {
	got := map[string]string{}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for f := range want {
			ctl, file, _ := strings.Cut(f, "/")
			for _, pat := range []string{"/sys/fs/cgroup/" + ctl + "/" + parent + "/builder-*/" + file, "/sys/fs/cgroup/" + ctl + "/*/*/" + parent + "/builder-*/" + file} {
				m, _ := filepath.Glob(pat)
				for _, p := range m {
					if b, err := os.ReadFile(p); err == nil {
						got[f] = strings.TrimSpace(string(b))
					}
				}
			}
		}
		// The cgroup exists a moment before its limits are written: keep
		// reading until they are there (a loaded machine shows the gap).
		if maps.Equal(got, want) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
	return got
}
