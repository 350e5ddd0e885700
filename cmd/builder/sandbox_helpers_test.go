package main

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
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
	// The cgroups and processes that appeared during the test must go.
	// Each is followed by name: another builder on the machine (a
	// developer's, other tests') makes new ones all the time, which are
	// not this test's leftovers; a leak stays until the deadline.
	current := func() map[string]bool {
		now := map[string]bool{}
		for c := range sandboxCgroups() {
			if !cgBefore[c] {
				now[c] = true
			}
		}
		for p := range sandboxProcesses() {
			if !procsBefore[p] {
				now["process "+p] = true
			}
		}
		return now
	}
	watched := current()
	deadline := time.Now().Add(10 * time.Second)
	for {
		now := current()
		var left []string
		for e := range watched {
			if now[e] {
				left = append(left, e)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			sort.Strings(left)
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
