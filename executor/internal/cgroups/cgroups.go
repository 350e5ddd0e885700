package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Version is the cgroup hierarchy flavour of the host.
type Version int

// Hierarchy versions.
const (
	V1 Version = 1 // one hierarchy per controller (legacy, hybrid)
	V2 Version = 2 // the unified hierarchy
)

func (v Version) String() string {
	switch v {
	case V1:
		return "cgroup v1"
	case V2:
		return "cgroup v2"
	}
	return fmt.Sprintf("cgroup version %d", int(v))
}

// DefaultMount is where the cgroup filesystems are mounted.
const DefaultMount = "/sys/fs/cgroup"

// Limits are the resource limits of a group; zero values leave the
// kernel's default (unlimited) in place.
type Limits struct {
	Memory int64 // bytes
	// MemorySwap is memory+swap in bytes; -1 is unlimited swap. Zero with
	// Memory set allows as much swap as memory (memory+swap == 2*Memory),
	// as docker. Without swap accounting in the kernel it is ignored.
	MemorySwap int64
	CPUs       float64 // CPU quota in cores
	CPUShares  uint64  // relative weight, v1 shares (2..262144)
	CpusetCPUs string  // e.g. "0-1"
	PidsLimit  int64
	// DeviceReadBps and DeviceWriteBps throttle block devices (blkio
	// throttle on v1, io.max on v2).
	DeviceReadBps, DeviceWriteBps []DeviceRate
	// Devices are devices-cgroup rules ("c 1:3 rwm"); when set the group
	// first denies every device ("a"), then allows these. v1 only: v2 has
	// no devices controller files (access is eBPF), and Set ignores them.
	Devices []string
}

// DeviceRate is a rate limit in bytes per second on a block device.
type DeviceRate struct {
	Major, Minor uint32
	Rate         uint64
}

// DefaultDevices is docker's default device allowlist: mknod of any node,
// and access to the standard character devices and pseudo-terminals.
var DefaultDevices = []string{
	"c *:* m", "b *:* m",
	"c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", // null zero full random urandom
	"c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", // tty console ptmx
	"c 136:* rwm", // pts
}

// Stats is the resource use of a group.
type Stats struct {
	CPUUser    time.Duration
	CPUSystem  time.Duration
	MemoryPeak uint64
	IORead     uint64
	IOWrite    uint64
	PidsPeak   uint64
	// OOMKills counts processes the kernel's OOM killer killed in the group.
	OOMKills uint64
}

// Detect reports which hierarchy is mounted at DefaultMount.
func Detect() (Version, error) {
	return detectAt(DefaultMount)
}

func detectAt(mount string) (Version, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(mount, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", mount, err)
	}
	switch st.Type {
	case unix.CGROUP2_SUPER_MAGIC:
		return V2, nil
	case unix.TMPFS_MAGIC, unix.CGROUP_SUPER_MAGIC:
		return V1, nil
	}
	return 0, fmt.Errorf("%s is neither a cgroup2 mount nor a tmpfs of cgroup v1 hierarchies (fs type %#x)", mount, st.Type)
}

// v1Controllers are the v1 controllers a group joins; the others (devices,
// named hierarchies) are inherited from the builder's own groups.
var v1Controllers = []string{"memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer", "devices"}

// v2Controllers are enabled in cgroup.subtree_control down to the group.
var v2Controllers = []string{"cpu", "cpuset", "io", "memory", "pids"}

// Cgroup is one control group: on v1 a directory in each controller's
// hierarchy, on v2 a single directory.
type Cgroup struct {
	version Version
	// dirs maps controller -> directory (v1); on v2 the only key is "".
	dirs map[string]string
	// parents are the levels of the parent path (for CgroupParent),
	// deepest first; Destroy removes those a builder made (madeMode) when
	// they are empty.
	parents []string
	// homes maps each v1 directory to the group of the builder in the
	// same hierarchy, where StartIn's thread returns.
	homes map[string]string

	sampleOnce sync.Once
	stop       chan struct{}
	sampled    sync.WaitGroup
	pidsPeak   atomic.Uint64
}

// Announce is told a group's directories (as Dirs returns them) and the
// levels of its parent path (as Parents returns them) before any is made.
type Announce func(dirs map[string]string, parents []string) error

// New creates the group name under the calling process's own cgroup plus
// parent (a relative path, "" for none), in every hierarchy on v1.
// announce, when not nil, is called before any directory is made, so that
// a process killed while making them has said where they are, parents
// included; New fails without making any when it fails.
func New(parent, name string, announce Announce) (*Cgroup, error) {
	v, err := Detect()
	if err != nil {
		return nil, err
	}
	if announce == nil {
		announce = func(map[string]string, []string) error { return nil }
	}
	if v == V2 {
		own, err := ownPaths()
		if err != nil {
			return nil, err
		}
		return newV2(DefaultMount, own[""], parent, name, announce)
	}
	return newV1(parent, name, announce)
}

// Version is the hierarchy flavour of c.
func (c *Cgroup) Version() Version { return c.version }

// Dirs returns the group's directories (controller -> path on v1; one
// entry with key "" on v2).
func (c *Cgroup) Dirs() map[string]string {
	m := make(map[string]string, len(c.dirs))
	for k, v := range c.dirs {
		m[k] = v
	}
	return m
}

func checkName(parent, name string) error {
	if name == "" || strings.ContainsAny(name, "/") || name == "." || name == ".." {
		return fmt.Errorf("invalid cgroup name %q", name)
	}
	for _, c := range strings.Split(parent, "/") {
		if c == ".." {
			return fmt.Errorf("invalid cgroup parent %q: must not contain ..", parent)
		}
	}
	return nil
}

// ownPaths parses /proc/self/cgroup into controller -> path ("" for the
// v2 entry).
func ownPaths() (map[string]string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("reading own cgroup: %w", err)
	}
	return parseProcCgroup(data), nil
}

func parseProcCgroup(data []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			m[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			m[c] = parts[2]
		}
	}
	return m
}

// v1Mount is one cgroup v1 hierarchy from mountinfo.
type v1Mount struct {
	root, mountpoint string
	controllers      []string
}

func v1Mounts() ([]v1Mount, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	return parseV1Mounts(data), nil
}

func parseV1Mounts(data []byte) []v1Mount {
	var out []v1Mount
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f := strings.Fields(pre)
		p := strings.Fields(post)
		if len(f) < 5 || len(p) < 3 || p[0] != "cgroup" {
			continue
		}
		m := v1Mount{root: f[3], mountpoint: unescapeMount(f[4])}
		for _, o := range strings.Split(p[2], ",") {
			for _, c := range v1Controllers {
				if o == c {
					m.controllers = append(m.controllers, c)
				}
			}
		}
		if len(m.controllers) > 0 {
			out = append(out, m)
		}
	}
	return out
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func newV1(parent, name string, announce Announce) (*Cgroup, error) {
	if err := checkName(parent, name); err != nil {
		return nil, err
	}
	own, err := ownPaths()
	if err != nil {
		return nil, err
	}
	mounts, err := v1Mounts()
	if err != nil {
		return nil, err
	}
	c := &Cgroup{version: V1, dirs: map[string]string{}, homes: map[string]string{}}
	var made []v1Mount // the hierarchies, one per directory
	for _, m := range mounts {
		p, ok := own[m.controllers[0]]
		if !ok {
			continue
		}
		rel := strings.TrimPrefix(p, m.root)
		if m.root != "/" && rel == p {
			// Our group is outside this mount's view (a container
			// sees its own group as the root).
			rel = "/"
		}
		base := filepath.Join(m.mountpoint, rel)
		dir := filepath.Join(base, parent, name)
		if _, ok := c.homes[dir]; !ok {
			c.homes[dir] = base
			made = append(made, m)
		}
		for _, ctl := range m.controllers {
			c.dirs[ctl] = dir
		}
	}
	if len(c.dirs) == 0 {
		return nil, errors.New("no cgroup v1 controllers mounted")
	}
	levels := map[string][]string{}
	for _, m := range made {
		base := c.homes[c.dirs[m.controllers[0]]]
		levels[base] = parentLevels(base, parent)
		c.parents = append(c.parents, levels[base]...)
	}
	if err := announce(c.Dirs(), c.Parents()); err != nil {
		return nil, err
	}
	for _, m := range made {
		dir := c.dirs[m.controllers[0]]
		base := c.homes[dir]
		if err := mkdirV1(levels[base], dir, m.controllers); err != nil {
			_ = c.Destroy()
			return nil, err
		}
	}
	return c, nil
}

// parentLevels returns the directories of the parent path below base,
// deepest first.
func parentLevels(base, parent string) []string {
	var out []string
	for p := filepath.Join(base, parent); p != base && len(p) > len(base); p = filepath.Dir(p) {
		out = append(out, p)
	}
	return out
}

// madeMode is the mode of the parent levels a builder makes: the sticky
// bit, which nothing else sets on a cgroup, marks them as a builder's, to
// remove when the last group in them is gone (a level the user made is
// never removed). mkdir sets it, so no level is ever unmarked while it
// exists, not even when the process is killed right after making it.
const madeMode = 0o755 | os.ModeSticky

// builderMade reports whether the parent level p was made by a builder.
func builderMade(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir() && fi.Mode()&os.ModeSticky != 0
}

// makeLevels makes the missing parent levels (deepest first) and then
// dir, calling init on each level and on dir. A level removed meanwhile
// (the last group of a concurrent build left it) starts it over.
func makeLevels(levels []string, dir string, init func(d string) error) error {
	path := slices.Clone(levels)
	slices.Reverse(path)
	path = append(path, dir)
	var err error
	for range 5 {
		if err = makePath(path, dir, init); !errors.Is(err, os.ErrNotExist) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

func makePath(path []string, dir string, init func(d string) error) error {
	for _, d := range path {
		mode := os.FileMode(madeMode)
		if d == dir {
			mode = 0o755
		}
		if err := os.Mkdir(d, mode); err != nil && (d == dir || !errors.Is(err, os.ErrExist)) {
			return fmt.Errorf("creating cgroup %s: %w", d, err)
		}
		if err := init(d); err != nil {
			return err
		}
	}
	return nil
}

// mkdirV1 makes a v1 group's missing parent levels and dir, initialising
// cpuset.cpus/mems of cpuset groups left empty from their parent (v1
// leaves them empty, which forbids joining).
func mkdirV1(levels []string, dir string, controllers []string) error {
	if !slices.Contains(controllers, "cpuset") {
		return makeLevels(levels, dir, func(string) error { return nil })
	}
	return makeLevels(levels, dir, func(d string) error {
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := os.ReadFile(filepath.Join(d, f))
			if err != nil {
				return fmt.Errorf("reading %s of %s: %w", f, d, err)
			}
			if len(bytes.TrimSpace(cur)) > 0 {
				continue
			}
			val, err := os.ReadFile(filepath.Join(filepath.Dir(d), f))
			if err != nil {
				return fmt.Errorf("reading %s of %s: %w", f, filepath.Dir(d), err)
			}
			if err := writeFile(d, f, string(bytes.TrimSpace(val))); err != nil {
				return err
			}
		}
		return nil
	})
}

func newV2(mount, own, parent, name string, announce Announce) (*Cgroup, error) {
	if err := checkName(parent, name); err != nil {
		return nil, err
	}
	base := filepath.Join(mount, own)
	dir := filepath.Join(base, parent, name)
	c := &Cgroup{version: V2, dirs: map[string]string{"": dir}, parents: parentLevels(base, parent)}
	if err := announce(c.Dirs(), c.Parents()); err != nil {
		return nil, err
	}
	// Enable the controllers level by level. A level that holds processes
	// cannot delegate ("no internal processes"); the group then simply
	// runs without those controllers and Set reports limits it cannot
	// apply.
	delegate := func(l string) {
		avail, _ := os.ReadFile(filepath.Join(l, "cgroup.controllers"))
		for _, ctl := range v2Controllers {
			if fieldsContain(avail, ctl) {
				_ = writeFile(l, "cgroup.subtree_control", "+"+ctl)
			}
		}
	}
	delegate(base)
	err := makeLevels(c.parents, dir, func(d string) error {
		if d != dir {
			delegate(d)
		}
		return nil
	})
	if err != nil {
		_ = c.Destroy()
		return nil, err
	}
	return c, nil
}

func fieldsContain(b []byte, s string) bool {
	for _, f := range strings.Fields(string(b)) {
		if f == s {
			return true
		}
	}
	return false
}

func writeFile(dir, file, val string) error {
	p := filepath.Join(dir, file)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("writing %q to %s: %w", val, p, err)
	}
	_, err = f.WriteString(val)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %q to %s: %w", val, p, err)
	}
	return nil
}

func readString(dir, file string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	return strings.TrimSpace(string(b)), err
}

func readUint(dir, file string) (uint64, error) {
	s, err := readString(dir, file)
	if err != nil {
		return 0, err
	}
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing %s: %w", filepath.Join(dir, file), err)
	}
	return n, nil
}

// keyValues parses "key value" lines (cpu.stat, memory.events, ...).
func keyValues(dir, file string) (map[string]uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil, err
	}
	m := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		if n, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			m[f[0]] = n
		}
	}
	return m, nil
}

// Apply moves pid (and, for a process, all its threads) into the group.
func (c *Cgroup) Apply(pid int) error {
	seen := map[string]bool{}
	for _, d := range c.dirs {
		if seen[d] {
			continue
		}
		seen[d] = true
		if err := writeFile(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	c.startPidsSampler()
	return nil
}

// StartIn calls start, which starts one process, on an OS thread that has
// joined the group for the moment, so that the process is born in it. It
// is the v1 way to what CLONE_INTO_CGROUP does on v2: moving a process in
// with Apply takes the kernel's global threadgroup lock for writing, which
// waits for an RCU grace period (10-15 ms here, on every RUN that did not
// start right after another), while a thread moving itself ("0" written
// to a tasks file) does not take it. The thread then moves back to the
// builder's groups, or is discarded if it cannot. On v2 it is start
// followed by Apply.
func (c *Cgroup) StartIn(start func() (pid int, err error)) error {
	if c.version == V2 {
		pid, err := start()
		if err != nil {
			return err
		}
		return c.Apply(pid)
	}
	done := make(chan error, 1)
	var run func()
	run = func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread is never terminated, only parked: keep
			// it out of the group and use another one.
			finished := make(chan struct{})
			go func() { run(); close(finished) }()
			<-finished
			runtime.UnlockOSThread()
			return
		}
		home, err := c.startInLocked(start)
		if home {
			runtime.UnlockOSThread()
		}
		// Otherwise the thread ends with this goroutine.
		done <- err
	}
	go run()
	return <-done
}

// startInLocked moves the calling (locked) thread into every hierarchy's
// group, calls start there and moves the thread back. home says whether
// the thread is back in the builder's groups.
func (c *Cgroup) startInLocked(start func() (int, error)) (home bool, err error) {
	var joined []string
	defer func() {
		for _, d := range joined {
			if joinThread(c.homes[d]) != nil {
				return
			}
		}
		home = true
	}()
	for _, d := range c.dirs {
		if slices.Contains(joined, d) {
			continue
		}
		if _, ok := c.homes[d]; !ok {
			return false, fmt.Errorf("cgroup %s: no group to return to", d)
		}
		if err := joinThread(d); err != nil {
			return false, err
		}
		joined = append(joined, d)
	}
	if _, err := start(); err != nil {
		return false, err
	}
	c.startPidsSampler()
	return false, nil
}

// joinThread moves the calling thread into the v1 group dir.
func joinThread(dir string) error {
	fd, err := unix.Open(filepath.Join(dir, "tasks"), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("joining cgroup %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("0")); err != nil {
		return fmt.Errorf("joining cgroup %s: %w", dir, err)
	}
	return nil
}

// startPidsSampler samples pids.current where the kernel keeps no
// pids.peak (v1 before 6.x).
func (c *Cgroup) startPidsSampler() {
	d, ok := c.dirs["pids"]
	if c.version == V2 {
		d, ok = c.dirs[""], true
	}
	if !ok {
		return
	}
	if _, err := os.Stat(filepath.Join(d, "pids.peak")); err == nil {
		return
	}
	if _, err := os.Stat(filepath.Join(d, "pids.current")); err != nil {
		return
	}
	c.sampleOnce.Do(func() {
		c.stop = make(chan struct{})
		c.sampled.Add(1)
		go func() {
			defer c.sampled.Done()
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				if n, err := readUint(d, "pids.current"); err == nil && n > c.pidsPeak.Load() {
					c.pidsPeak.Store(n)
				}
				select {
				case <-c.stop:
					return
				case <-t.C:
				}
			}
		}()
	})
}

func (c *Cgroup) stopSampler() {
	if c.stop != nil {
		select {
		case <-c.stop:
		default:
			close(c.stop)
		}
		c.sampled.Wait()
	}
}

// Set writes the limits l into the group.
func (c *Cgroup) Set(l Limits) error {
	if l.Memory < 0 || l.PidsLimit < 0 || l.CPUs < 0 || l.MemorySwap < -1 {
		return fmt.Errorf("invalid negative limit in %+v", l)
	}
	if l.MemorySwap > 0 && l.Memory > 0 && l.MemorySwap < l.Memory {
		return fmt.Errorf("memory+swap limit %d is below the memory limit %d", l.MemorySwap, l.Memory)
	}
	if c.version == V2 {
		return c.setV2(l)
	}
	return c.setV1(l)
}

func (c *Cgroup) ctlDir(ctl string) (string, error) {
	if c.version == V2 {
		return c.dirs[""], nil
	}
	d, ok := c.dirs[ctl]
	if !ok {
		return "", fmt.Errorf("cgroup controller %s is not mounted", ctl)
	}
	return d, nil
}

func (c *Cgroup) setV1(l Limits) error {
	type w struct{ ctl, file, val string }
	var ws []w
	if l.Memory > 0 {
		ws = append(ws, w{"memory", "memory.limit_in_bytes", strconv.FormatInt(l.Memory, 10)})
		swap := l.MemorySwap
		if swap == 0 {
			// docker: --memory without --memory-swap allows as much
			// swap as memory (memory+swap = 2 x memory).
			swap = 2 * l.Memory
		}
		// Without swap accounting (no memsw files) the swap limit is
		// discarded, as docker does with a warning.
		if _, err := os.Stat(filepath.Join(c.dirs["memory"], "memory.memsw.limit_in_bytes")); err == nil {
			ws = append(ws, w{"memory", "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10)})
		}
	}
	if l.CPUs > 0 {
		const period = 100000
		ws = append(ws, w{"cpu", "cpu.cfs_period_us", strconv.Itoa(period)},
			w{"cpu", "cpu.cfs_quota_us", strconv.FormatInt(int64(l.CPUs*period), 10)})
	}
	if l.CPUShares > 0 {
		ws = append(ws, w{"cpu", "cpu.shares", strconv.FormatUint(l.CPUShares, 10)})
	}
	if l.CpusetCPUs != "" {
		ws = append(ws, w{"cpuset", "cpuset.cpus", l.CpusetCPUs})
	}
	if l.PidsLimit > 0 {
		ws = append(ws, w{"pids", "pids.max", strconv.FormatInt(l.PidsLimit, 10)})
	}
	for _, r := range l.DeviceReadBps {
		ws = append(ws, w{"blkio", "blkio.throttle.read_bps_device", fmt.Sprintf("%d:%d %d", r.Major, r.Minor, r.Rate)})
	}
	for _, r := range l.DeviceWriteBps {
		ws = append(ws, w{"blkio", "blkio.throttle.write_bps_device", fmt.Sprintf("%d:%d %d", r.Major, r.Minor, r.Rate)})
	}
	if len(l.Devices) > 0 {
		ws = append(ws, w{"devices", "devices.deny", "a"})
		for _, rule := range l.Devices {
			ws = append(ws, w{"devices", "devices.allow", rule})
		}
	}
	for _, x := range ws {
		d, err := c.ctlDir(x.ctl)
		if err != nil {
			return err
		}
		if err := writeFile(d, x.file, x.val); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cgroup) setV2(l Limits) error {
	d := c.dirs[""]
	type w struct{ file, val string }
	var ws []w
	if l.Memory > 0 {
		ws = append(ws, w{"memory.max", strconv.FormatInt(l.Memory, 10)})
		switch {
		case l.MemorySwap == -1:
			ws = append(ws, w{"memory.swap.max", "max"})
		case l.MemorySwap == 0:
			// As much swap as memory, as docker.
			ws = append(ws, w{"memory.swap.max", strconv.FormatInt(l.Memory, 10)})
		default:
			ws = append(ws, w{"memory.swap.max", strconv.FormatInt(l.MemorySwap-l.Memory, 10)})
		}
	}
	if l.CPUs > 0 {
		const period = 100000
		ws = append(ws, w{"cpu.max", fmt.Sprintf("%d %d", int64(l.CPUs*period), period)})
	}
	if l.CPUShares > 0 {
		ws = append(ws, w{"cpu.weight", strconv.FormatUint(SharesToWeight(l.CPUShares), 10)})
	}
	if l.CpusetCPUs != "" {
		ws = append(ws, w{"cpuset.cpus", l.CpusetCPUs})
	}
	if l.PidsLimit > 0 {
		ws = append(ws, w{"pids.max", strconv.FormatInt(l.PidsLimit, 10)})
	}
	for _, line := range ioMaxLines(l) {
		ws = append(ws, w{"io.max", line})
	}
	for _, x := range ws {
		if x.file == "memory.swap.max" {
			if _, err := os.Stat(filepath.Join(d, x.file)); err != nil {
				continue // no swap accounting: discarded, as docker does
			}
		}
		if err := writeFile(d, x.file, x.val); err != nil {
			return err
		}
	}
	return nil
}

// ioMaxLines turns the device rates into io.max lines, one per device.
func ioMaxLines(l Limits) []string {
	type key struct{ major, minor uint32 }
	var order []key
	rates := map[key][2]uint64{}
	add := func(r DeviceRate, i int) {
		k := key{r.Major, r.Minor}
		v, ok := rates[k]
		if !ok {
			order = append(order, k)
		}
		v[i] = r.Rate
		rates[k] = v
	}
	for _, r := range l.DeviceReadBps {
		add(r, 0)
	}
	for _, r := range l.DeviceWriteBps {
		add(r, 1)
	}
	var out []string
	for _, k := range order {
		v := rates[k]
		line := fmt.Sprintf("%d:%d", k.major, k.minor)
		if v[0] > 0 {
			line += fmt.Sprintf(" rbps=%d", v[0])
		}
		if v[1] > 0 {
			line += fmt.Sprintf(" wbps=%d", v[1])
		}
		out = append(out, line)
	}
	return out
}

// SharesToWeight converts v1 cpu.shares (2..262144) to a v2 cpu.weight
// (1..10000), the same mapping the OCI runtimes use.
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	if shares < 2 {
		shares = 2
	}
	if shares > 262144 {
		shares = 262144
	}
	return 1 + ((shares-2)*9999)/262142
}

// Stats reads the resource use of the group. Controllers that are not
// available contribute zeros.
func (c *Cgroup) Stats() (Stats, error) {
	var s Stats
	if c.version == V2 {
		d := c.dirs[""]
		if kv, err := keyValues(d, "cpu.stat"); err == nil {
			s.CPUUser = time.Duration(kv["user_usec"]) * time.Microsecond
			s.CPUSystem = time.Duration(kv["system_usec"]) * time.Microsecond
		} else {
			return s, fmt.Errorf("reading cpu.stat of %s: %w", d, err)
		}
		s.MemoryPeak, _ = readUint(d, "memory.peak")
		if kv, err := keyValues(d, "memory.events"); err == nil {
			s.OOMKills = kv["oom_kill"]
		}
		if b, err := os.ReadFile(filepath.Join(d, "io.stat")); err == nil {
			s.IORead, s.IOWrite = parseIOStat(b)
		}
		s.PidsPeak, _ = readUint(d, "pids.peak")
	} else {
		if d, ok := c.dirs["cpuacct"]; ok {
			u, uerr := readUint(d, "cpuacct.usage_user")
			sy, serr := readUint(d, "cpuacct.usage_sys")
			if uerr == nil && serr == nil {
				s.CPUUser, s.CPUSystem = time.Duration(u), time.Duration(sy)
			} else if kv, err := keyValues(d, "cpuacct.stat"); err == nil {
				// USER_HZ is 100 on every Linux ABI.
				s.CPUUser = time.Duration(kv["user"]) * 10 * time.Millisecond
				s.CPUSystem = time.Duration(kv["system"]) * 10 * time.Millisecond
			} else {
				return s, fmt.Errorf("reading cpu accounting of %s: %w", d, err)
			}
		}
		if d, ok := c.dirs["memory"]; ok {
			s.MemoryPeak, _ = readUint(d, "memory.max_usage_in_bytes")
			if kv, err := keyValues(d, "memory.oom_control"); err == nil {
				s.OOMKills = kv["oom_kill"]
			}
		}
		if d, ok := c.dirs["blkio"]; ok {
			for _, f := range []string{"blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes", "blkio.io_service_bytes_recursive"} {
				if b, err := os.ReadFile(filepath.Join(d, f)); err == nil {
					s.IORead, s.IOWrite = parseBlkio(b)
					if s.IORead+s.IOWrite > 0 {
						break
					}
				}
			}
		}
		if d, ok := c.dirs["pids"]; ok {
			s.PidsPeak, _ = readUint(d, "pids.peak")
		}
	}
	if p := c.pidsPeak.Load(); p > s.PidsPeak {
		s.PidsPeak = p
	}
	return s, nil
}

// parseBlkio sums the Read and Write lines of a v1 io_service_bytes file.
func parseBlkio(b []byte) (read, write uint64) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			continue
		}
		switch f[1] {
		case "Read":
			read += n
		case "Write":
			write += n
		}
	}
	return read, write
}

// parseIOStat sums rbytes and wbytes of a v2 io.stat file.
func parseIOStat(b []byte) (read, write uint64) {
	for _, line := range strings.Split(string(b), "\n") {
		for _, kv := range strings.Fields(line) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "rbytes":
				read += n
			case "wbytes":
				write += n
			}
		}
	}
	return read, write
}

// Procs lists the processes in the group.
func (c *Cgroup) Procs() ([]int, error) {
	seen := map[int]bool{}
	var out []int
	dirs := map[string]bool{}
	for _, d := range c.dirs {
		dirs[d] = true
	}
	for d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("listing processes of %s: %w", d, err)
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	return out, nil
}

// Kill freezes the group, SIGKILLs every member and thaws it, so that no
// process can fork away while it is being killed. It does not wait.
func (c *Cgroup) Kill() error {
	if c.version == V2 {
		d := c.dirs[""]
		if err := writeFile(d, "cgroup.kill", "1"); err == nil {
			return nil
		}
	}
	thaw := c.freeze()
	pids, err := c.Procs()
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	thaw()
	return err
}

// freeze freezes the group as far as the hierarchy allows and returns the
// matching thaw.
func (c *Cgroup) freeze() (thaw func()) {
	var dir, file, frozen, thawed string
	if c.version == V2 {
		dir, file, frozen, thawed = c.dirs[""], "cgroup.freeze", "1", "0"
	} else if d, ok := c.dirs["freezer"]; ok {
		dir, file, frozen, thawed = d, "freezer.state", "FROZEN", "THAWED"
	} else {
		return func() {}
	}
	if err := writeFile(dir, file, frozen); err != nil {
		return func() {}
	}
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if c.version == V2 {
			if kv, err := keyValues(dir, "cgroup.events"); err != nil || kv["frozen"] == 1 {
				break
			}
		} else if s, err := readString(dir, "freezer.state"); err != nil || s == "FROZEN" {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	return func() { _ = writeFile(dir, file, thawed) }
}

// Destroy kills everything in the group, waits until it is empty and
// removes its directories (and the parent directories New created, when
// they are empty). It is safe to call more than once.
func (c *Cgroup) Destroy() error {
	defer c.stopSampler()
	var errs []error
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, err := c.Procs()
		if err != nil {
			errs = append(errs, err)
			break
		}
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("cgroup %s: processes %v survived SIGKILL", c.anyDir(), pids))
			break
		}
		if err := c.Kill(); err != nil {
			errs = append(errs, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	seen := map[string]bool{}
	for _, d := range c.dirs {
		if seen[d] {
			continue
		}
		seen[d] = true
		if err := rmdir(d, deadline); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range c.parents {
		// Shared with concurrent groups: only a level a builder made,
		// and only when empty (the last group out removes it).
		if builderMade(p) {
			_ = unix.Rmdir(p)
		}
	}
	return errors.Join(errs...)
}

func (c *Cgroup) anyDir() string {
	for _, d := range c.dirs {
		return d
	}
	return ""
}

func rmdir(d string, deadline time.Time) error {
	for {
		err := unix.Rmdir(d)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("removing cgroup %s: %w", d, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Parents returns the levels of the parent path, deepest first: those a
// builder made (this one or another) go with the last group in them.
func (c *Cgroup) Parents() []string { return append([]string(nil), c.parents...) }

// Open returns the group whose directories Dirs and Parents gave (recorded
// by a process that has since died), so that Destroy can remove it. Every
// directory must lie under DefaultMount and the group's be named like the
// executor's groups ("builder-..."): the record comes from disk, and
// nothing else is ever removed through it (parents only when a builder
// made them and they are empty).
func Open(dirs map[string]string, parents []string) (*Cgroup, error) {
	v, err := Detect()
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, errors.New("cgroup record without directories")
	}
	for _, d := range dirs {
		clean := filepath.Clean(d)
		if clean != d || !strings.HasPrefix(d, DefaultMount+"/") || !strings.HasPrefix(filepath.Base(d), "builder-") {
			return nil, fmt.Errorf("cgroup record names %q: not a builder cgroup", d)
		}
	}
	for _, p := range parents {
		if filepath.Clean(p) != p || !strings.HasPrefix(p, DefaultMount+"/") {
			return nil, fmt.Errorf("cgroup record names parent %q: not under %s", p, DefaultMount)
		}
	}
	return &Cgroup{version: v, dirs: dirs, parents: parents}, nil
}
