package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/builderdev/builder/executor/internal/cgroups"
	"github.com/builderdev/builder/internal/fsutil"
)

// DefaultHostname is the sandbox's hostname when Spec.Hostname is empty.
const DefaultHostname = "builder"

// killTimeout bounds how long Run waits for the sandbox after killing it.
const killTimeout = 2 * time.Second

// Executor runs processes in sandboxes: fresh mount, pid, uts and ipc
// namespaces (and net for Network "none"), pivoted into the spec's root
// filesystem, inside a cgroup of their own.
type Executor struct {
	stateDir string
	// cgroupParent is used for specs without a CgroupParent; tests set it
	// so that they can tell their cgroups from other builders' on the host.
	cgroupParent string
	// cgroupErr is why this rootless executor runs without cgroups
	// (nil when it has them).
	cgroupErr error
	// owner is this process's lease in stateDir/leases: run directories
	// carry it (see Recover).
	owner string
}

// New returns an Executor that keeps its scratch space (mount points,
// generated /etc files) under stateDir, which it creates.
func New(stateDir string) (*Executor, error) {
	if stateDir == "" {
		return nil, errors.New("executor: empty state directory")
	}
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, fmt.Errorf("executor state directory %s: %w", stateDir, err)
	}
	if os.Geteuid() != 0 {
		if unshareErr != nil {
			return nil, fmt.Errorf("executor: running as uid %d needs root or a user namespace: %w", os.Geteuid(), unshareErr)
		}
		return nil, fmt.Errorf("executor: running as uid %d needs root or a user namespace (call executor.MaybeUnshare in main)", os.Geteuid())
	}
	if unshareErr != nil {
		return nil, fmt.Errorf("executor: %w", unshareErr)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("creating executor state directory %s: %w", abs, err)
	}
	// Rootless without delegation, or root in a container without a
	// writable cgroup mount: run without a cgroup (CgroupWarning says so).
	owner, err := fsutil.OwnLease(filepath.Join(abs, "leases"))
	if err != nil {
		return nil, fmt.Errorf("executor state directory %s: %w", abs, err)
	}
	e := &Executor{stateDir: abs, owner: owner, cgroupErr: probeCgroup()}
	return e, nil
}

// probeCgroup creates and removes a cgroup under the builder's own one:
// a rootless builder can only do so with a delegated hierarchy.
func probeCgroup() error {
	cg, err := cgroups.New("", "builder-probe-"+randomID(), nil)
	if err != nil {
		return err
	}
	return cg.Destroy()
}

// CgroupError is why the executor runs its sandboxes without a cgroup:
// rootless without a delegated cgroup hierarchy, or root without a usable
// cgroup mount (a container started without a writable /sys/fs/cgroup).
// Without one there are no resource limits (Run refuses specs that set
// them) and the stats come from getrusage: CPU times, the largest
// process's peak RSS as MemoryPeak, I/O, no PidsPeak. It is nil when
// cgroups work.
func (e *Executor) CgroupError() error { return e.cgroupErr }

// CgroupWarning is the one warning to show when CgroupError is not nil:
// what is missing, what it means and how to fix it ("" with cgroups).
func (e *Executor) CgroupWarning() string {
	if e.cgroupErr == nil {
		return ""
	}
	if Rootless() {
		fix := "delegate cgroup v2 controllers to your user (systemd: Delegate=yes for user@.service)"
		if v, err := cgroups.Detect(); err == nil && v == cgroups.V1 {
			// v1 hierarchies cannot be delegated safely; systemd does not.
			fix = "boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1) and " + fix
		}
		return fmt.Sprintf("rootless without cgroup delegation: RUN steps have no resource limits and their stats come from getrusage (%v); to fix, %s", e.cgroupErr, fix)
	}
	return fmt.Sprintf("no usable cgroup hierarchy: RUN steps have no resource limits and their stats come from getrusage (%v); "+
		"to fix, mount one (mount -t cgroup2 none %s) or, in a container, start it with a writable cgroup (docker run --privileged or --cgroupns=private)",
		e.cgroupErr, cgroups.DefaultMount)
}

// cgroupNeed says what the limit flags need when there is no cgroup.
func (e *Executor) cgroupNeed() string {
	if Rootless() {
		return "cgroup delegation when running rootless"
	}
	return "a usable cgroup hierarchy, which this machine lacks"
}

// limitFlags names the docker flags of the limits l sets.
func limitFlags(l Limits) []string {
	var out []string
	for _, x := range []struct {
		set  bool
		flag string
	}{
		{l.Memory != 0, "--memory"}, {l.MemorySwap != 0, "--memory-swap"}, {l.CPUs != 0, "--cpus"},
		{l.CPUShares != 0, "--cpu-shares"}, {l.CpusetCPUs != "", "--cpuset-cpus"}, {l.PidsLimit != 0, "--pids-limit"},
		{len(l.DeviceReadBps) > 0, "--device-read-bps"}, {len(l.DeviceWriteBps) > 0, "--device-write-bps"},
	} {
		if x.set {
			out = append(out, x.flag)
		}
	}
	return out
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Run runs spec.Args in a new sandbox and waits for it. It returns an
// *ExitError when the process ran and failed (non-zero exit, signal, OOM
// kill), a *StartError when the command could not start, another error
// when the sandbox could not be set up (the message says why, e.g. an
// unknown user). When ctx is cancelled the whole process tree is killed
// and Run returns ctx's error within about two seconds. Mounts, the
// cgroup and every process are gone when Run returns.
func (e *Executor) Run(ctx context.Context, spec Spec) (Stats, error) {
	if len(spec.Args) == 0 {
		return Stats{}, errors.New("run: no command")
	}
	stats, err := e.run(ctx, spec)
	var exitErr *ExitError
	var startErr *StartError
	switch {
	case err == nil, errors.As(err, &exitErr):
		return stats, err
	case errors.As(err, &startErr):
		return stats, &StartError{Code: startErr.Code, Err: fmt.Errorf("run %q: %w", spec.Args[0], startErr.Err)}
	}
	return stats, fmt.Errorf("run %q: %w", spec.Args[0], err)
}

// run is Run without the command in its errors: validate, start the
// sandbox, wait for it (killing it when ctx ends), collect its stats and
// map how it ended to an error.
func (e *Executor) run(ctx context.Context, spec Spec) (Stats, error) {
	start := time.Now()
	limits, netNone, err := e.validate(spec)
	if err != nil {
		return Stats{}, err
	}
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}
	id := randomID()
	runDir := filepath.Join(e.stateDir, "run-"+e.owner+"-"+id)
	if err := os.Mkdir(runDir, 0o700); err != nil {
		return Stats{}, fmt.Errorf("creating run directory %s: %w", runDir, err)
	}
	defer removeRunDir(runDir)
	cfg := initConfig{
		Root:        filepath.Join(runDir, "rootfs"),
		Rootfs:      spec.Rootfs,
		Mounts:      spec.Mounts,
		Args:        spec.Args,
		Env:         spec.Env,
		Cwd:         spec.Cwd,
		User:        spec.User,
		Hostname:    spec.Hostname,
		NetworkNone: netNone,
		Insecure:    spec.Security == SecurityInsecure,
		Tty:         spec.Tty,
		ShmSize:     spec.ShmSize,
		Ulimits:     spec.Ulimits,
		ExtraHosts:  spec.ExtraHosts,
	}
	if cfg.Hostname == "" {
		cfg.Hostname = DefaultHostname
	}
	if err := writeEtcFiles(runDir, &cfg); err != nil {
		return Stats{}, err
	}
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return Stats{}, fmt.Errorf("creating rootfs mount point %s: %w", cfg.Root, err)
	}
	sb, err := e.start(spec, &cfg, limits, id)
	if err != nil {
		return Stats{}, err
	}
	defer sb.close()
	waitErr, cancelled := sb.wait(ctx)
	stats, st, statsErr, destroyErr := sb.collect(time.Since(start))
	if cancelled {
		return stats.Stats, ctx.Err()
	}
	if err := exitError(st, waitErr, stats.oomKills, spec.Limits.Memory); err != nil {
		return stats.Stats, err
	}
	switch {
	case st.CleanupError != "":
		return stats.Stats, fmt.Errorf("cleaning up the sandbox: %s", st.CleanupError)
	case destroyErr != nil:
		return stats.Stats, destroyErr
	case statsErr != nil:
		return stats.Stats, fmt.Errorf("reading stats: %w", statsErr)
	}
	return stats.Stats, nil
}

// validate checks spec and returns its cgroup limits and whether it has
// a network namespace of its own.
func (e *Executor) validate(spec Spec) (cgroups.Limits, bool, error) {
	if spec.Tty {
		if _, ok := spec.Stdin.(*os.File); !ok {
			return cgroups.Limits{}, false, fmt.Errorf("a tty needs a terminal (*os.File) as stdin, got %T", spec.Stdin)
		}
	}
	if len(spec.Rootfs) == 0 {
		return cgroups.Limits{}, false, errors.New("no root filesystem")
	}
	switch spec.Security {
	case SecuritySandbox, SecurityInsecure:
	default:
		return cgroups.Limits{}, false, fmt.Errorf("unknown security mode %q", spec.Security)
	}
	limits, err := toCgroupLimits(spec.Limits, spec.Security)
	if err != nil {
		return cgroups.Limits{}, false, err
	}
	if e.cgroupErr != nil {
		if f := limitFlags(spec.Limits); len(f) > 0 {
			return cgroups.Limits{}, false, fmt.Errorf("%s needs %s (%v)", strings.Join(f, ", "), e.cgroupNeed(), e.cgroupErr)
		}
	}
	switch spec.Network {
	case "", NetworkHost:
		return limits, false, nil
	case NetworkNone:
		return limits, true, nil
	}
	return cgroups.Limits{}, false, fmt.Errorf("unknown network mode %q", spec.Network)
}

// sandbox is a started sandbox init: the process, its cgroup (nil
// without cgroups) and the pipes to it.
type sandbox struct {
	cmd      *exec.Cmd
	cg       *cgroups.Cgroup
	waitCh   chan error
	statusCh chan initStatus
	syncW    *os.File
	statR    *os.File
}

// start starts the sandbox init in new namespaces, places it in its
// cgroup with the limits, sends it cfg and lets it go.
func (e *Executor) start(spec Spec, cfg *initConfig, limits cgroups.Limits, id string) (*sandbox, error) {
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer cfgW.Close()
	syncR, syncW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		return nil, err
	}
	statR, statW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		syncR.Close()
		syncW.Close()
		return nil, err
	}
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if cfg.NetworkNone {
		flags |= unix.CLONE_NEWNET
	}
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{initArg0},
		Env:        []string{"GOMAXPROCS=1"},
		Dir:        "/",
		Stdin:      spec.Stdin,
		Stdout:     spec.Stdout,
		Stderr:     spec.Stderr,
		ExtraFiles: []*os.File{cfgR, syncR, statW},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: flags,
			// No Pdeathsig: when the builder dies the sync pipe
			// reaches EOF and the init kills the command and cleans
			// up the root filesystem before it exits.
		},
		// Every process of the sandbox is dead when its init is; this
		// only bounds waiting for a Stdin reader that never returns.
		WaitDelay: time.Second,
	}
	// The cgroup is made first and the init born in it (see
	// cgroups.StartIn); the init blocks on the sync pipe meanwhile.
	cg, err := e.newCgroup(spec, limits, id, filepath.Dir(cfg.Root))
	if err == nil {
		startInit := func() (int, error) {
			if err := cmd.Start(); err != nil {
				return 0, err
			}
			return cmd.Process.Pid, nil
		}
		if cg != nil {
			err = cg.StartIn(startInit)
		} else {
			_, err = startInit()
		}
	}
	cfgR.Close()
	syncR.Close()
	statW.Close()
	if cmd.Process == nil {
		syncW.Close()
		statR.Close()
		if cg != nil {
			_ = cg.Destroy()
		}
		return nil, fmt.Errorf("starting sandbox: %w", err)
	}
	sb := &sandbox{cmd: cmd, cg: cg, waitCh: make(chan error, 1), statusCh: make(chan initStatus, 1), syncW: syncW, statR: statR}
	go func() { sb.waitCh <- cmd.Wait() }()
	go sb.readStatus()
	if err != nil {
		// Started but not placed in its cgroup (v2's Apply failed).
		sb.abort()
		return nil, err
	}
	// The init blocks on the sync pipe until it is in its cgroup.
	if err := json.NewEncoder(cfgW).Encode(cfg); err != nil {
		sb.abort()
		return nil, fmt.Errorf("sending config to sandbox init: %w", err)
	}
	cfgW.Close()
	if _, err := syncW.Write([]byte{1}); err != nil {
		sb.abort()
		return nil, fmt.Errorf("starting sandbox init: %w", err)
	}
	return sb, nil
}

// newCgroup makes the sandbox's cgroup with the limits, or returns nil
// without cgroups (rootless without delegation): the pid namespace still
// takes every process down with the init.
//
// The cgroup's directories are recorded in runDir before they are made, so
// that the next builder can remove them should this one be killed (see
// Recover).
func (e *Executor) newCgroup(spec Spec, limits cgroups.Limits, id, runDir string) (*cgroups.Cgroup, error) {
	if e.cgroupErr != nil {
		return nil, nil
	}
	parent := spec.CgroupParent
	if parent == "" {
		parent = e.cgroupParent
	}
	// The intermediate groups of --cgroup-parent it makes go too.
	cg, err := cgroups.New(parent, "builder-"+id, func(dirs map[string]string, parents []string) error {
		return recordCgroup(runDir, cgroupFile{Dirs: dirs, Parents: parents})
	})
	if err != nil {
		return nil, err
	}
	if err := cg.Set(limits); err != nil {
		_ = cg.Destroy()
		return nil, fmt.Errorf("setting limits: %w", err)
	}
	return cg, nil
}

// readStatus reads the init's final status report.
func (sb *sandbox) readStatus() {
	var st initStatus
	data, _ := io.ReadAll(sb.statR)
	if len(data) > 0 {
		if err := json.Unmarshal(data, &st); err != nil {
			st.Error = fmt.Sprintf("sandbox init sent a bad status %q: %v", data, err)
		}
	}
	sb.statusCh <- st
}

// abort kills a sandbox that has not been let go and releases it.
func (sb *sandbox) abort() {
	_ = sb.cmd.Process.Kill()
	<-sb.waitCh
	sb.close()
}

// close releases the pipes and the cgroup (Destroy is idempotent).
func (sb *sandbox) close() {
	sb.syncW.Close()
	sb.statR.Close()
	if sb.cg != nil {
		_ = sb.cg.Destroy()
	}
}

// wait waits for the init to exit. When ctx ends first it escalates:
// closing the sync pipe asks the init to kill the command and clean up;
// after half of killTimeout the whole cgroup is killed, after the other
// half the init itself.
func (sb *sandbox) wait(ctx context.Context) (waitErr error, cancelled bool) {
	select {
	case waitErr = <-sb.waitCh:
		return waitErr, false
	case <-ctx.Done():
	}
	sb.syncW.Close()
	select {
	case waitErr = <-sb.waitCh:
		return waitErr, true
	case <-time.After(killTimeout / 2):
	}
	if sb.cg != nil {
		_ = sb.cg.Kill()
	}
	select {
	case waitErr = <-sb.waitCh:
	case <-time.After(killTimeout / 2):
		_ = sb.cmd.Process.Kill()
		waitErr = <-sb.waitCh
	}
	return waitErr, true
}

// runStats are the Stats of a finished sandbox and its OOM kills.
type runStats struct {
	Stats
	oomKills uint64
}

// collect gathers the stats of the exited sandbox (from its cgroup, or
// from the init's getrusage without one), destroys the cgroup and
// returns the init's status.
func (sb *sandbox) collect(wall time.Duration) (runStats, initStatus, error, error) {
	var cst cgroups.Stats
	var statsErr, destroyErr error
	if sb.cg != nil {
		cst, statsErr = sb.cg.Stats()
		destroyErr = sb.cg.Destroy()
	}
	st := <-sb.statusCh
	stats := runStats{Stats: Stats{
		CPUUser:    cst.CPUUser,
		CPUSystem:  cst.CPUSystem,
		MemoryPeak: cst.MemoryPeak,
		IORead:     cst.IORead,
		IOWrite:    cst.IOWrite,
		PidsPeak:   cst.PidsPeak,
		Wall:       wall,
	}, oomKills: cst.OOMKills}
	if sb.cg == nil {
		stats.CPUUser = time.Duration(st.CPUUser)
		stats.CPUSystem = time.Duration(st.CPUSystem)
		stats.MemoryPeak = st.MaxRSS
	}
	// cgroup v1 blkio only sees direct and synchronous I/O: buffered
	// writes are written back later by the flusher threads and charged
	// to the root group. The tasks' own I/O counters (reported by the
	// init from getrusage of every reaped process) count bytes when they
	// are dirtied, so a RUN that writes a file through the page cache is
	// accounted for on every hierarchy. Take the larger of the two.
	stats.IORead = max(stats.IORead, st.IORead)
	stats.IOWrite = max(stats.IOWrite, st.IOWrite)
	return stats, st, statsErr, destroyErr
}

// exitError maps how the sandbox ended to Run's error: nil for a command
// that exited 0, a setup error or *StartError the init reported, an
// *ExitError for a command (or the init itself) that failed.
func exitError(st initStatus, waitErr error, oomKills uint64, memLimit int64) error {
	if st.Error != "" {
		msg := st.Error
		if st.CleanupError != "" {
			msg += " (cleanup: " + st.CleanupError + ")"
		}
		if st.StartCode != 0 {
			return &StartError{Code: st.StartCode, Err: errors.New(msg)}
		}
		return errors.New(msg)
	}
	var exitErr *ExitError
	switch {
	case st.Exited && st.Signal != 0:
		exitErr = &ExitError{Code: 128 + st.Signal, Signal: unix.SignalName(syscall.Signal(st.Signal))}
	case st.Exited && st.Code != 0:
		exitErr = &ExitError{Code: st.Code}
	case !st.Exited:
		// The init itself died (OOM killer, pids limit, external kill).
		var ee *exec.ExitError
		if !errors.As(waitErr, &ee) {
			if waitErr == nil {
				return errors.New("sandbox init exited without reporting a status")
			}
			return fmt.Errorf("waiting for sandbox init: %w", waitErr)
		}
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			exitErr = &ExitError{Code: 128 + int(ws.Signal()), Signal: unix.SignalName(ws.Signal())}
		} else {
			exitErr = &ExitError{Code: ws.ExitStatus()}
			if exitErr.Code == 0 {
				exitErr.Code = 1
			}
		}
	}
	if exitErr == nil {
		return nil
	}
	if oomKills > 0 {
		exitErr.OOMKilled = true
		exitErr.MemoryLimit = memLimit
	}
	return exitErr
}

func toCgroupLimits(l Limits, sec Security) (cgroups.Limits, error) {
	out := cgroups.Limits{
		Memory:     l.Memory,
		MemorySwap: l.MemorySwap,
		CPUs:       l.CPUs,
		CPUShares:  l.CPUShares,
		CpusetCPUs: l.CpusetCPUs,
		PidsLimit:  l.PidsLimit,
	}
	if sec != SecurityInsecure {
		out.Devices = cgroups.DefaultDevices
	}
	for _, x := range []struct {
		in  []DeviceRate
		out *[]cgroups.DeviceRate
	}{{l.DeviceReadBps, &out.DeviceReadBps}, {l.DeviceWriteBps, &out.DeviceWriteBps}} {
		for _, r := range x.in {
			var st unix.Stat_t
			if err := unix.Stat(r.Path, &st); err != nil {
				return out, fmt.Errorf("device rate limit on %s: %w", r.Path, err)
			}
			if st.Mode&unix.S_IFMT != unix.S_IFBLK {
				return out, fmt.Errorf("device rate limit on %s: not a block device", r.Path)
			}
			*x.out = append(*x.out, cgroups.DeviceRate{Major: unix.Major(st.Rdev), Minor: unix.Minor(st.Rdev), Rate: r.Rate})
		}
	}
	return out, nil
}

// writeEtcFiles prepares the files bind-mounted over /etc/resolv.conf,
// /etc/hosts and /etc/hostname.
func writeEtcFiles(runDir string, cfg *initConfig) error {
	hosts, err := os.ReadFile("/etc/hosts")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading /etc/hosts: %w", err)
	}
	if len(hosts) == 0 {
		hosts = []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	}
	if !strings.HasSuffix(string(hosts), "\n") {
		hosts = append(hosts, '\n')
	}
	hosts = append(hosts, fmt.Sprintf("127.0.1.1\t%s\n", cfg.Hostname)...)
	for _, h := range cfg.ExtraHosts { // --add-host, as docker appends them
		hosts = append(hosts, fmt.Sprintf("%s\t%s\n", h.IP, h.Host)...)
	}
	files := map[string][]byte{
		"hosts":    hosts,
		"hostname": []byte(cfg.Hostname + "\n"),
	}
	if _, err := os.Stat("/etc/resolv.conf"); err == nil {
		cfg.ResolvConf = "/etc/resolv.conf"
	} else {
		files["resolv.conf"] = nil
		cfg.ResolvConf = filepath.Join(runDir, "resolv.conf")
	}
	for name, data := range files {
		p := filepath.Join(runDir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
	}
	cfg.Hosts = filepath.Join(runDir, "hosts")
	cfg.HostnameFile = filepath.Join(runDir, "hostname")
	return nil
}

// removeRunDir removes the run directory without ever recursing: should
// the rootfs still be mounted there, rmdir fails instead of deleting the
// snapshot's contents.
func removeRunDir(runDir string) {
	for _, f := range []string{"hosts", "hostname", "resolv.conf", cgroupRecord} {
		_ = os.Remove(filepath.Join(runDir, f))
	}
	_ = unix.Rmdir(filepath.Join(runDir, "rootfs"))
	_ = unix.Rmdir(runDir)
}

// CgroupMode describes the cgroup setup a sandbox would get here: the
// hierarchy ("cgroup v2", "cgroup v1"), or "none" and why (see
// CgroupWarning).
func CgroupMode() string {
	v, err := cgroups.Detect()
	if err != nil {
		return fmt.Sprintf("none (%v)", err)
	}
	if err := probeCgroup(); err != nil {
		return fmt.Sprintf("none (%s found, but no group can be made: %v)", v, err)
	}
	return v.String()
}
