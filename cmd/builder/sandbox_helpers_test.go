package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkHostClean fails t when mounts under root are left in the host's
// mount table, or when sandbox cgroups or processes that appeared during
// the test outlive it (others that come and go belong to tests running in
// parallel and are given a few seconds to vanish).
func checkHostClean(t *testing.T, root string, cgBefore, procsBefore map[string]bool) {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(root)
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == abs || strings.HasPrefix(f[4], abs+"/")) {
			t.Errorf("mount left under %s: %s", root, line)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var left []string
		for c := range sandboxCgroups() {
			if !cgBefore[c] {
				left = append(left, c)
			}
		}
		for p := range sandboxProcesses() {
			if !procsBefore[p] {
				left = append(left, "process "+p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("left behind: %v", left)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hostState records the sandbox cgroups and processes that exist now and
// registers checkHostClean for root at the end of t.
func hostState(t *testing.T, root string) {
	cg, procs := sandboxCgroups(), sandboxProcesses()
	t.Cleanup(func() { checkHostClean(t, root, cg, procs) })
}

// sandboxCgroups lists the executor's cgroups (builder-*) in every v1
// hierarchy or the unified one, below this process's cgroups.
func sandboxCgroups() map[string]bool {
	out := map[string]bool{}
	data, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || strings.HasPrefix(parts[1], "name=") {
			continue
		}
		ctls := strings.Split(parts[1], ",")
		if parts[1] == "" {
			ctls = []string{""}
		}
		for _, ctl := range ctls {
			for _, pat := range []string{"builder-*", "*/builder-*"} {
				m, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", ctl, parts[2], pat))
				for _, x := range m {
					out[x] = true
				}
			}
		}
	}
	return out
}

// sandboxProcesses lists the pids of sandbox inits.
func sandboxProcesses() map[string]bool {
	out := map[string]bool{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.HasPrefix(cmdline, []byte("builder-sandbox-init")) {
			out[e.Name()] = true
		}
	}
	return out
}
