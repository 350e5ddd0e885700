package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildWithoutCgroupMount builds as root in a mount namespace whose
// /sys/fs/cgroup is not a cgroup filesystem (a container started without
// one): RUN works without limits after one warning that says why and how
// to fix it, and a limit flag fails naming what it needs.
func TestBuildWithoutCgroupMount(t *testing.T) {
	requireRootE2E(t)
	bin := builderBinary(t)
	dir := t.TempDir()
	ctxDir := filepath.Join(dir, "ctx")
	writeBusyboxContext(t, ctxDir, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo ran-without-cgroup\"]\n",
	})
	root := filepath.Join(dir, "root")
	build := func(flags ...string) (string, error) {
		args := append([]string{"-m", "--propagation", "private", "sh", "-c",
			`mount -t ramfs none /sys/fs/cgroup && exec "$0" "$@"`, bin, "build", "--progress=plain", "--root", root, "--no-cache"}, flags...)
		out, err := exec.Command("unshare", append(args, ctxDir)...).CombinedOutput()
		return string(out), err
	}
	out, err := build()
	if err != nil {
		t.Fatalf("build without a cgroup mount: %v\n%s", err, out)
	}
	if n := strings.Count(out, "no usable cgroup hierarchy"); n != 1 {
		t.Errorf("%d warnings about the missing cgroup hierarchy, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "mount -t cgroup2") || !strings.Contains(out, "ran-without-cgroup") {
		t.Errorf("no fix in the warning or the RUN did not run:\n%s", out)
	}
	out, err = build("--memory", "64m")
	if err == nil || !strings.Contains(out, "--memory needs a usable cgroup hierarchy") {
		t.Errorf("--memory without cgroups: err %v, want a clear failure:\n%s", err, out)
	}
}
