package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/registrytest"
	"golang.org/x/sys/unix"
)

const rootlessTestUser = "builder-rootless-test"

// rootlessUser creates the test user with its home under dir and with
// subordinate ids unless subIDs is false, and removes it (and its
// /etc/subuid and /etc/subgid lines) when the test ends. It returns the
// user's uid.
func rootlessUser(t *testing.T, home string, subIDs bool) int {
	t.Helper()
	for _, tool := range []string{"useradd", "userdel", "usermod", "setpriv", "newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (packages passwd, util-linux, uidmap): %v", tool, err)
		}
	}
	removeUser := func() {
		_ = exec.Command("userdel", "-f", rootlessTestUser).Run()
		for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			var keep []string
			for _, l := range strings.SplitAfter(string(data), "\n") {
				if l != "" && !strings.HasPrefix(l, rootlessTestUser+":") {
					keep = append(keep, l)
				}
			}
			if s := strings.Join(keep, ""); s != string(data) {
				_ = os.WriteFile(f, []byte(s), 0o644)
			}
		}
	}
	removeUser() // a leftover of an interrupted run
	if out, err := exec.Command("useradd", "-M", "-d", home, "-s", "/bin/sh", rootlessTestUser).CombinedOutput(); err != nil {
		t.Skipf("cannot create the test user: %v: %s", err, out)
	}
	t.Cleanup(removeUser)
	out, err := exec.Command("id", "-u", rootlessTestUser).Output()
	if err != nil {
		t.Fatalf("id -u %s: %v", rootlessTestUser, err)
	}
	uid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, uid); err != nil {
		t.Fatal(err)
	}
	has := func(f string) bool {
		data, _ := os.ReadFile(f)
		return bytes.Contains(data, []byte("\n"+rootlessTestUser+":")) || bytes.HasPrefix(data, []byte(rootlessTestUser+":"))
	}
	switch {
	case subIDs && !(has("/etc/subuid") && has("/etc/subgid")):
		// A range far above the usual ones, so as not to overlap.
		if out, err := exec.Command("usermod", "--add-subuids", "3100000-3165535", "--add-subgids", "3100000-3165535", rootlessTestUser).CombinedOutput(); err != nil {
			t.Skipf("cannot give the test user subordinate ids: %v: %s", err, out)
		}
	case !subIDs:
		removeSub := func(f string) {
			data, _ := os.ReadFile(f)
			var keep []string
			for _, l := range strings.SplitAfter(string(data), "\n") {
				if l != "" && !strings.HasPrefix(l, rootlessTestUser+":") {
					keep = append(keep, l)
				}
			}
			if err := os.WriteFile(f, []byte(strings.Join(keep, "")), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		removeSub("/etc/subuid")
		removeSub("/etc/subgid")
	}
	return uid
}

// asUser runs the builder binary as the test user.
func asUser(bin, home string, args ...string) *exec.Cmd {
	cmd := exec.Command("setpriv", append([]string{"--reuid", rootlessTestUser, "--regid", rootlessTestUser, "--init-groups", bin}, args...)...)
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin:/usr/sbin:/sbin"}
	cmd.Dir = home
	return cmd
}

// ociLastLayer returns the headers of the last layer of the single image
// of an OCI archive.
func ociLastLayer(t *testing.T, path string) []*tar.Header {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
	blob := func(dgst string) []byte {
		b, ok := files["blobs/"+strings.Replace(dgst, ":", "/", 1)]
		if !ok {
			t.Fatalf("%s: no blob %s", path, dgst)
		}
		return b
	}
	var index struct {
		Manifests []struct{ Digest string }
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("%s: index.json: %v (%s)", path, err, files["index.json"])
	}
	var manifest struct {
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal(blob(index.Manifests[0].Digest), &manifest); err != nil || len(manifest.Layers) == 0 {
		t.Fatalf("%s: manifest: %v", path, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob(manifest.Layers[len(manifest.Layers)-1].Digest)))
	if err != nil {
		t.Fatal(err)
	}
	var hs []*tar.Header
	lr := tar.NewReader(zr)
	for {
		h, err := lr.Next()
		if errors.Is(err, io.EOF) {
			return hs
		}
		if err != nil {
			t.Fatalf("reading the last layer: %v", err)
		}
		hs = append(hs, h)
	}
}

// userProcesses lists the processes running as uid, or as one of the
// subordinate ids (a leftover sandbox).
func userProcesses(uid int) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/proc", e.Name()), &st) != nil {
			continue
		}
		if int(st.Uid) == uid || st.Uid >= 100000 && st.Uid < 165536 || st.Uid >= 3100000 && st.Uid < 3165536 {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			out = append(out, fmt.Sprintf("%s (uid %d): %s", e.Name(), st.Uid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return out
}

// TestRootlessBuild builds as a non-root user: the builder moves itself
// into a user namespace, RUN writes files owned by root and by 1000, and
// the exported layer records those ids, not the host's.
func TestRootlessBuild(t *testing.T) {
	requireRootE2E(t)
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	t.Logf("kernel %s", unix.ByteSliceToString(uts.Release[:]))
	bin := builderBinary(t)
	tests := []struct {
		name string
		// driver is written to the snapshot root before the build
		// ("" lets the builder choose: overlay where the kernel
		// allows it in a user namespace, else native).
		driver  string
		subIDs  bool
		dockerf []string
		// wantIDs are path -> "uid:gid" in the last layer; wantErr a
		// part of the build's output when it must fail.
		wantIDs map[string]string
		wantErr string
		flags   []string
	}{
		{
			name:   "subordinate ids and automatic snapshotter",
			subIDs: true,
			dockerf: []string{
				"RUN mkdir /d && echo old > /d/old",
				"RUN echo root > /rootfile && mkdir /u && echo u > /u/f && chown -R 1000:1000 /u && rm -rf /d && mkdir /d",
			},
			wantIDs: map[string]string{"rootfile": "0:0", "u/": "1000:1000", "u/f": "1000:1000", "d/": "0:0"},
		},
		{
			name:   "subordinate ids and native snapshotter",
			driver: "native",
			subIDs: true,
			dockerf: []string{
				"RUN echo root > /rootfile && mkdir /u && echo u > /u/f && chown -R 1000:1000 /u",
			},
			wantIDs: map[string]string{"rootfile": "0:0", "u/": "1000:1000", "u/f": "1000:1000"},
		},
		{
			name:    "single id mapping: root works",
			subIDs:  false,
			dockerf: []string{"RUN echo root > /rootfile"},
			wantIDs: map[string]string{"rootfile": "0:0"},
		},
		{
			name:    "single id mapping: another user is refused clearly",
			subIDs:  false,
			dockerf: []string{"USER 1000", "RUN echo x > /tmp/x"},
			wantErr: "uid 1000 is not mapped in the builder's user namespace",
		},
		{
			name:    "limits need cgroup delegation",
			subIDs:  true,
			dockerf: []string{"RUN true"},
			flags:   []string{"--memory", "64m"},
			wantErr: "--memory needs cgroup delegation when running rootless",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// The user must reach its home below the test's
			// directories, which are 0700.
			for _, d := range []string{filepath.Dir(dir), dir} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			home := filepath.Join(dir, "home")
			uid := rootlessUser(t, home, tc.subIDs)
			ctxDir := filepath.Join(dir, "ctx")
			if err := os.MkdirAll(ctxDir, 0o755); err != nil {
				t.Fatal(err)
			}
			bb, err := os.ReadFile("/bin/busybox")
			if err != nil {
				t.Fatal(err)
			}
			df := "FROM scratch\nCOPY busybox /bin/busybox\nSHELL [\"/bin/busybox\", \"sh\", \"-c\"]\n" +
				"RUN /bin/busybox mkdir -p /tmp && /bin/busybox --install -s /bin\n" + strings.Join(tc.dockerf, "\n") + "\n"
			for name, data := range map[string][]byte{"busybox": bb, "Dockerfile": []byte(df)} {
				if err := os.WriteFile(filepath.Join(ctxDir, name), data, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			ubin := filepath.Join(dir, "builder")
			data, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(ubin, data, 0o755); err != nil {
				t.Fatal(err)
			}
			// The default state directory of a non-root user.
			stateRoot := filepath.Join(home, ".local", "share", "builder")
			if tc.driver != "" {
				snaps := filepath.Join(stateRoot, "snapshots")
				if err := os.MkdirAll(snaps, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(snaps, "driver"), []byte(tc.driver), 0o600); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command("chown", "-R", strconv.Itoa(uid)+":"+strconv.Itoa(uid), home).CombinedOutput(); err != nil {
					t.Fatalf("chown: %v: %s", err, out)
				}
			}
			dest := filepath.Join(home, "out.tar")
			args := append([]string{"build", "--progress=plain", "--output", "type=oci,dest=" + dest}, tc.flags...)
			out, err := asUser(ubin, home, append(args, ctxDir)...).CombinedOutput()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(string(out), tc.wantErr) {
					t.Fatalf("build: err %v, want a failure with %q:\n%s", err, tc.wantErr, out)
				}
			} else {
				if err != nil {
					t.Fatalf("rootless build: %v\n%s", err, out)
				}
				if !strings.Contains(string(out), "rootless without cgroup delegation") {
					t.Errorf("no notice about running without cgroups:\n%s", out)
				}
				// The fix it gives fits the machine: v1 is not delegated.
				var st unix.Statfs_t
				if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type != unix.CGROUP2_SUPER_MAGIC && !strings.Contains(string(out), "systemd.unified_cgroup_hierarchy=1") {
					t.Errorf("the notice on a cgroup v1 machine does not say to boot with v2:\n%s", out)
				}
				driver, err := os.ReadFile(filepath.Join(stateRoot, "snapshots", "driver"))
				if err != nil {
					t.Fatalf("the build did not use the default state directory %s: %v", stateRoot, err)
				}
				t.Logf("snapshotter: %s", driver)
				if tc.driver != "" && string(driver) != tc.driver {
					t.Errorf("snapshotter %q, want %q", driver, tc.driver)
				}
				got := map[string]string{}
				for _, h := range ociLastLayer(t, dest) {
					got[h.Name] = fmt.Sprintf("%d:%d", h.Uid, h.Gid)
					if h.Uid == uid || h.Gid == uid || h.Uid >= 65536 || h.Gid >= 65536 {
						t.Errorf("layer entry %s has host ids %d:%d", h.Name, h.Uid, h.Gid)
					}
				}
				for p, want := range tc.wantIDs {
					if got[p] != want {
						t.Errorf("layer entry %s: ids %q, want %q (layer: %v)", p, got[p], want, got)
					}
				}
			}
			if left := userProcesses(uid); len(left) > 0 {
				t.Errorf("processes left behind: %v", left)
			}
			if left := hostLeftovers(t, dir, "\x00never\x00", ""); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// TestRootlessEmulation builds an arm64 RUN as a non-root user with
// BUILDER_BINFMT=private: the builder registers QEMU with binfmt_misc in
// its own user namespace (Linux 6.7 and later), the RUN runs emulated, and
// the host's binfmt_misc handlers do not change.
func TestRootlessEmulation(t *testing.T) {
	requireRootE2E(t)
	if runtime.GOARCH != "amd64" {
		t.Skip("emulates arm64 on amd64")
	}
	armBusybox := os.Getenv("BUILDER_TEST_BUSYBOX_ARM64")
	if armBusybox == "" {
		armBusybox = registrytest.BusyboxArm64Path
	}
	bb, err := os.ReadFile(armBusybox)
	if err != nil {
		t.Skipf("needs Debian's arm64 busybox-static (.ci/lib.sh ensure_busybox_arm64): %v", err)
	}
	if _, err := os.Stat("/usr/bin/qemu-aarch64-static"); err != nil {
		t.Skipf("needs qemu-user-static: %v", err)
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	var major, minor int
	fmt.Sscanf(unix.ByteSliceToString(uts.Release[:]), "%d.%d", &major, &minor)
	if major < 6 || major == 6 && minor < 7 {
		t.Skipf("binfmt_misc per user namespace needs Linux 6.7, this is %d.%d", major, minor)
	}
	hostBefore, _ := os.ReadDir("/proc/sys/fs/binfmt_misc")
	bin := builderBinary(t)
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	home := filepath.Join(dir, "home")
	uid := rootlessUser(t, home, true)
	ctxDir := filepath.Join(dir, "ctx")
	if err := os.MkdirAll(ctxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	df := "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox uname -m > /arch\"]\n"
	for name, data := range map[string][]byte{"busybox": bb, "Dockerfile": []byte(df)} {
		if err := os.WriteFile(filepath.Join(ctxDir, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ubin := filepath.Join(dir, "builder")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ubin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(home, "out")
	cmd := asUser(ubin, home, "build", "--progress=plain", "--platform", "linux/arm64", "--output", "type=local,dest="+dest, ctxDir)
	cmd.Env = append(cmd.Env, "BUILDER_BINFMT=private")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rootless arm64 build: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(dest, "arch")); err != nil || string(got) != "aarch64\n" {
		t.Errorf("/arch = %q, %v; want aarch64\n%s", got, err, out)
	}
	hostAfter, _ := os.ReadDir("/proc/sys/fs/binfmt_misc")
	for _, e := range hostAfter {
		if strings.HasPrefix(e.Name(), "builder-") {
			t.Errorf("the host's binfmt_misc got %s", e.Name())
		}
	}
	if len(hostAfter) > len(hostBefore) {
		t.Logf("host binfmt_misc entries %d -> %d (another process may have registered one)", len(hostBefore), len(hostAfter))
	}
	if left := userProcesses(uid); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
	if left := hostLeftovers(t, dir, "\x00never\x00", ""); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
