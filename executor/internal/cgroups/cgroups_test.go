package cgroups

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseProcCgroup(t *testing.T) {
	in := "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/x\n0::/user.slice\n"
	want := map[string]string{"name=systemd": "/", "memory": "/process_api/abc", "cpu": "/x", "cpuacct": "/x", "": "/user.slice"}
	if got := parseProcCgroup([]byte(in)); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestParseV1Mounts(t *testing.T) {
	in := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /docker/1 /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /mnt/with\040space rw - cgroup cgroup rw,pids
`
	want := []v1Mount{
		{root: "/", mountpoint: "/sys/fs/cgroup/cpu,cpuacct", controllers: []string{"cpu", "cpuacct"}},
		{root: "/docker/1", mountpoint: "/sys/fs/cgroup/memory", controllers: []string{"memory"}},
		{root: "/", mountpoint: "/mnt/with space", controllers: []string{"pids"}},
	}
	if got := parseV1Mounts([]byte(in)); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestParseIO(t *testing.T) {
	r, w := parseBlkio([]byte("8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 1\n8:16 Read 1\nTotal 12289\n"))
	if r != 4097 || w != 8192 {
		t.Errorf("blkio: %d %d", r, w)
	}
	r, w = parseIOStat([]byte("8:0 rbytes=100 wbytes=200 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n"))
	if r != 101 || w != 202 {
		t.Errorf("io.stat: %d %d", r, w)
	}
}

func TestSharesToWeight(t *testing.T) {
	for _, tc := range []struct{ shares, weight uint64 }{
		{0, 0}, {2, 1}, {1024, 39}, {262144, 10000}, {1 << 30, 10000},
	} {
		if got := SharesToWeight(tc.shares); got != tc.weight {
			t.Errorf("SharesToWeight(%d) = %d, want %d", tc.shares, got, tc.weight)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		parent, name string
		ok           bool
	}{
		{"", "builder-1", true},
		{"a/b", "x", true},
		{"", "", false},
		{"", "a/b", false},
		{"../escape", "x", false},
	} {
		if err := checkName(tc.parent, tc.name); (err == nil) != tc.ok {
			t.Errorf("checkName(%q, %q) = %v", tc.parent, tc.name, err)
		}
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("cgroup tests skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("cgroup tests need root")
	}
}

func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestLifecycle(t *testing.T) {
	requireRoot(t)
	v, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("builder-test-%d", os.Getpid())
	c, err := New("builder-test-parent", name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Destroy() })
	if c.Version() != v {
		t.Errorf("version %v, detected %v", c.Version(), v)
	}
	l := Limits{Memory: 64 << 20, CPUs: 0.5, CPUShares: 512, CpusetCPUs: "0", PidsLimit: 50, Devices: DefaultDevices}
	disk, haveDisk := blockDevice()
	if haveDisk {
		l.DeviceReadBps = []DeviceRate{{disk.Major, disk.Minor, 1 << 20}}
		l.DeviceWriteBps = []DeviceRate{{disk.Major, disk.Minor, 2 << 20}}
	}
	if err := c.Set(l); err != nil {
		t.Fatal(err)
	}
	cmd := startSleep(t)
	if err := c.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	procs, err := c.Procs()
	if err != nil || !reflect.DeepEqual(procs, []int{cmd.Process.Pid}) {
		t.Errorf("Procs = %v, %v; want [%d]", procs, err, cmd.Process.Pid)
	}
	dirs := c.Dirs()
	if v == V1 {
		for file, want := range map[string]string{
			"memory/memory.limit_in_bytes": "67108864",
			"cpu/cpu.cfs_quota_us":         "50000",
			"cpu/cpu.shares":               "512",
			"cpuset/cpuset.cpus":           "0",
			"pids/pids.max":                "50",
		} {
			ctl, f, _ := strings.Cut(file, "/")
			if got := readFile(t, filepath.Join(dirs[ctl], f)); got != want {
				t.Errorf("%s = %q, want %q", file, got, want)
			}
			if !strings.Contains(dirs[ctl], "/builder-test-parent/"+name) {
				t.Errorf("%s dir %s not under the parent", ctl, dirs[ctl])
			}
		}
		if _, err := os.Stat(filepath.Join(dirs["memory"], "memory.memsw.limit_in_bytes")); err == nil {
			if got := readFile(t, filepath.Join(dirs["memory"], "memory.memsw.limit_in_bytes")); got != "134217728" {
				t.Errorf("memsw limit %s, want 2x memory", got)
			}
		}
		if d, ok := dirs["devices"]; ok {
			got := strings.Split(readFile(t, filepath.Join(d, "devices.list")), "\n")
			if len(got) != len(DefaultDevices) || !strings.Contains(strings.Join(got, ","), "c 1:3 rwm") || strings.Contains(strings.Join(got, ","), "a *:* rwm") {
				t.Errorf("devices.list = %q, want the default allowlist", got)
			}
		}
		if haveDisk {
			dev := fmt.Sprintf("%d:%d", disk.Major, disk.Minor)
			for f, want := range map[string]string{"blkio.throttle.read_bps_device": dev + " 1048576", "blkio.throttle.write_bps_device": dev + " 2097152"} {
				if got := readFile(t, filepath.Join(dirs["blkio"], f)); got != want {
					t.Errorf("%s = %q, want %q", f, got, want)
				}
			}
		}
	}
	st, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.PidsPeak != 1 {
		t.Errorf("pids peak %d, want 1", st.PidsPeak)
	}
	start := time.Now()
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Error("sleep survived Destroy")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Destroy took %v", d)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still exists", d)
		}
		if _, err := os.Stat(filepath.Dir(d)); !os.IsNotExist(err) {
			t.Errorf("parent %s still exists", filepath.Dir(d))
		}
	}
	if err := c.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func TestSetRejects(t *testing.T) {
	c := &Cgroup{version: V1, dirs: map[string]string{}}
	for _, l := range []Limits{{Memory: -1}, {MemorySwap: -2}, {Memory: 100, MemorySwap: 50}, {PidsLimit: 5}} {
		if err := c.Set(l); err == nil {
			t.Errorf("Set(%+v) succeeded", l)
		}
	}
}

// TestV2Unified exercises the v2 code on a hybrid host's unified
// hierarchy (which carries no controllers, but has the core files).
func TestV2Unified(t *testing.T) {
	requireRoot(t)
	const mount = DefaultMount + "/unified"
	var st unix.Statfs_t
	if err := unix.Statfs(mount, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		if v, _ := Detect(); v != V2 {
			t.Skip("no cgroup2 hierarchy mounted")
		}
	}
	own, err := ownPaths()
	if err != nil {
		t.Fatal(err)
	}
	m := mount
	if v, _ := Detect(); v == V2 {
		m = DefaultMount
	}
	c, err := newV2(m, own[""], "builder-test-v2parent", fmt.Sprintf("builder-test-%d", os.Getpid()), func(map[string]string, []string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Destroy() })
	cmd := startSleep(t)
	if err := c.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if procs, err := c.Procs(); err != nil || len(procs) != 1 {
		t.Errorf("Procs = %v, %v", procs, err)
	}
	if _, err := c.Stats(); err != nil {
		t.Errorf("Stats: %v", err)
	}
	dir := c.Dirs()[""]
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Error("sleep survived Destroy")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists", dir)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !os.IsNotExist(err) {
		t.Errorf("%s still exists", filepath.Dir(dir))
	}
}

// blockDevice returns a whole-disk block device of the host, if any.
func blockDevice() (DeviceRate, bool) {
	for _, p := range []string{"/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/xvda"} {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
			return DeviceRate{Major: unix.Major(st.Rdev), Minor: unix.Minor(st.Rdev)}, true
		}
	}
	return DeviceRate{}, false
}

func TestIOMaxLines(t *testing.T) {
	for _, tc := range []struct {
		l    Limits
		want []string
	}{
		{Limits{}, nil},
		{Limits{DeviceReadBps: []DeviceRate{{8, 0, 1 << 20}}}, []string{"8:0 rbps=1048576"}},
		{Limits{DeviceReadBps: []DeviceRate{{8, 0, 1}}, DeviceWriteBps: []DeviceRate{{8, 0, 2}, {8, 16, 3}}},
			[]string{"8:0 rbps=1 wbps=2", "8:16 wbps=3"}},
	} {
		if got := ioMaxLines(tc.l); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ioMaxLines(%+v) = %q, want %q", tc.l, got, tc.want)
		}
	}
}

// TestStartIn: the process is born in the group (every hierarchy), and no
// thread of the test process is left in it.
func TestStartIn(t *testing.T) {
	requireRoot(t)
	if _, err := Detect(); err != nil {
		t.Skip(err)
	}
	c, err := New("", fmt.Sprintf("builder-test-startin-%d", os.Getpid()), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Destroy() })
	if err := c.Set(Limits{PidsLimit: 50, CpusetCPUs: "0", Devices: DefaultDevices}); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	err = c.StartIn(func() (int, error) {
		cmd = exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		return cmd.Process.Pid, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	procs, err := c.Procs()
	if err != nil || !reflect.DeepEqual(procs, []int{cmd.Process.Pid}) {
		t.Errorf("Procs = %v, %v; want only the started process [%d]", procs, err, cmd.Process.Pid)
	}
	name := filepath.Base(c.anyDir())
	if got := readFile(t, fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid)); strings.Count(got, name) < len(uniqueDirs(c)) {
		t.Errorf("the process is not in the group in every hierarchy:\n%s", got)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/cgroup"); err == nil && strings.Contains(string(b), name) {
			t.Errorf("thread %s of the test is still in the group:\n%s", task.Name(), b)
		}
	}
	// The sandbox starts when the group is idle: joining it must not
	// wait for a grace period each time.
	start := time.Now()
	for range 5 {
		err := c.StartIn(func() (int, error) {
			p := exec.Command("true")
			return 0, p.Run()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("5 StartIn of /bin/true: %v", time.Since(start))
}

func uniqueDirs(c *Cgroup) map[string]bool {
	m := map[string]bool{}
	for _, d := range c.Dirs() {
		m[d] = true
	}
	return m
}

// TestSharedParentLevels: two groups under one --cgroup-parent path, the
// first of which made its levels: the levels stay while either group
// lives and go with the last one, whichever it is; a level that existed
// before any builder (the user's) stays.
func TestSharedParentLevels(t *testing.T) {
	requireRoot(t)
	if _, err := Detect(); err != nil {
		t.Skip(err)
	}
	user := fmt.Sprintf("builder-test-user-%d", os.Getpid())
	a, err := New(user+"/ci", "builder-test-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Destroy() })
	// What the user made: the top level, unmarked, as mkdir makes it.
	var userLevels, ciLevels []string
	for _, p := range a.Parents() {
		if filepath.Base(p) == user {
			userLevels = append(userLevels, p)
		} else {
			ciLevels = append(ciLevels, p)
		}
	}
	if len(userLevels) == 0 || len(userLevels) != len(ciLevels) {
		t.Fatalf("parents %v", a.Parents())
	}
	for _, p := range userLevels {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, p := range userLevels {
			_ = unix.Rmdir(p)
		}
	})
	for _, p := range ciLevels {
		if fi, err := os.Stat(p); err != nil || fi.Mode()&os.ModeSticky == 0 {
			t.Errorf("level %s a builder made is not marked: %v %v", p, fi.Mode(), err)
		}
	}
	b, err := New(user+"/ci", "builder-test-b", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Destroy() })
	if !reflect.DeepEqual(a.Parents(), b.Parents()) {
		t.Errorf("parents %v and %v", a.Parents(), b.Parents())
	}
	exist := func(want bool, ps []string) {
		t.Helper()
		for _, p := range ps {
			if _, err := os.Stat(p); (err == nil) != want {
				t.Errorf("%s exists: %v, want %v", p, err == nil, want)
			}
		}
	}
	// The first, which made the levels, goes first: b is still in them.
	if err := a.Destroy(); err != nil {
		t.Fatal(err)
	}
	exist(true, ciLevels)
	if err := b.Destroy(); err != nil {
		t.Fatal(err)
	}
	exist(false, ciLevels)
	exist(true, userLevels)
}

// TestNewAnnouncesFirst: the directories, and the parent path's that do
// not exist yet, are announced before any exists (a process killed while
// making them has recorded them), and a failing announcement makes none.
func TestNewAnnouncesFirst(t *testing.T) {
	requireRoot(t)
	if _, err := Detect(); err != nil {
		t.Skip(err)
	}
	name := fmt.Sprintf("builder-test-announce-%d", os.Getpid())
	parent := name + "-p/q"
	var announced map[string]string
	var announcedParents []string
	c, err := New(parent, name, func(dirs map[string]string, parents []string) error {
		announced, announcedParents = dirs, parents
		for _, d := range append(slices.Collect(maps.Values(dirs)), parents...) {
			if _, err := os.Stat(d); !os.IsNotExist(err) {
				t.Errorf("%s exists when announced (%v)", d, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Destroy() })
	if !reflect.DeepEqual(announced, c.Dirs()) {
		t.Errorf("announced %v, made %v", announced, c.Dirs())
	}
	if !reflect.DeepEqual(announcedParents, c.Parents()) {
		t.Errorf("announced parents %v, Parents %v", announcedParents, c.Parents())
	}
	want := map[string]bool{}
	for _, d := range c.Dirs() {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s not made: %v", d, err)
		}
		// Both levels of the parent path, deepest first.
		q, p := filepath.Dir(d), filepath.Dir(filepath.Dir(d))
		if i, j := slices.Index(announcedParents, q), slices.Index(announcedParents, p); i < 0 || j < 0 || i > j {
			t.Errorf("parents %v, want %s before %s", announcedParents, q, p)
		}
		want[q], want[p] = true, true
	}
	if len(announcedParents) != len(want) {
		t.Errorf("parents %v, want %d", announcedParents, len(want))
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, p := range announcedParents {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("parent %s left by Destroy (%v)", p, err)
		}
	}

	boom := fmt.Errorf("disk full")
	var refused map[string]string
	var refusedParents []string
	_, err = New(parent, name+"-refused", func(dirs map[string]string, parents []string) error {
		refused, refusedParents = dirs, parents
		return boom
	})
	if err != boom {
		t.Fatalf("error %v, want the announcement's", err)
	}
	if len(refusedParents) == 0 {
		t.Error("no parents announced for a parent path that does not exist")
	}
	for _, d := range append(slices.Collect(maps.Values(refused)), refusedParents...) {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s made although the announcement failed (%v)", d, err)
		}
	}
}
