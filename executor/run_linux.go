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

	"github.com/builderdev/builder/executor/cgroups"
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
	e := &Executor{stateDir: abs, cgroupErr: probeCgroup()}
	return e, nil
}

// probeCgroup creates and removes a cgroup under the builder's own one:
// a rootless builder can only do so with a delegated hierarchy.
func probeCgroup() error {
	cg, err := cgroups.New("", "builder-probe-"+randomID())
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
		return fmt.Sprintf("rootless without cgroup delegation: RUN steps have no resource limits and their stats come from getrusage (%v); "+
			"to fix, delegate cgroup v2 controllers to your user (systemd: Delegate=yes for user@.service)", e.cgroupErr)
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
// kill), another error when the sandbox could not be set up (the message
// says why, e.g. an unknown user). When ctx is cancelled the whole process
// tree is killed and Run returns ctx's error within about two seconds.
// Mounts, the cgroup and every process are gone when Run returns.
func (e *Executor) Run(ctx context.Context, spec Spec) (Stats, error) {
	start := time.Now()
	if len(spec.Args) == 0 {
		return Stats{}, errors.New("run: no command")
	}
	if spec.Tty {
		if _, ok := spec.Stdin.(*os.File); !ok {
			return Stats{}, fmt.Errorf("run %q: a tty needs a terminal (*os.File) as stdin, got %T", spec.Args[0], spec.Stdin)
		}
	}
	if len(spec.Rootfs) == 0 {
		return Stats{}, fmt.Errorf("run %q: no root filesystem", spec.Args[0])
	}
	switch spec.Security {
	case SecuritySandbox, SecurityInsecure:
	default:
		return Stats{}, fmt.Errorf("run %q: unknown security mode %q", spec.Args[0], spec.Security)
	}
	limits, err := toCgroupLimits(spec.Limits, spec.Security)
	if err != nil {
		return Stats{}, fmt.Errorf("run %q: %w", spec.Args[0], err)
	}
	if e.cgroupErr != nil {
		if f := limitFlags(spec.Limits); len(f) > 0 {
			return Stats{}, fmt.Errorf("run %q: %s needs %s (%v)", spec.Args[0], strings.Join(f, ", "), e.cgroupNeed(), e.cgroupErr)
		}
	}
	var netNone bool
	switch spec.Network {
	case "", NetworkHost:
	case NetworkNone:
		netNone = true
	default:
		return Stats{}, fmt.Errorf("run %q: unknown network mode %q", spec.Args[0], spec.Network)
	}
	if err := ctx.Err(); err != nil {
		return Stats{}, fmt.Errorf("run %q: %w", spec.Args[0], err)
	}

	id := randomID()
	runDir := filepath.Join(e.stateDir, "run-"+id)
	if err := os.Mkdir(runDir, 0o700); err != nil {
		return Stats{}, fmt.Errorf("creating run directory %s: %w", runDir, err)
	}
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
	}
	if cfg.Hostname == "" {
		cfg.Hostname = DefaultHostname
	}
	defer removeRunDir(runDir)
	if err := writeEtcFiles(runDir, &cfg); err != nil {
		return Stats{}, err
	}

	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return Stats{}, fmt.Errorf("run %q: %w", spec.Args[0], err)
	}
	defer cfgW.Close()
	syncR, syncW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		return Stats{}, fmt.Errorf("run %q: %w", spec.Args[0], err)
	}
	defer syncW.Close()
	statR, statW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		syncR.Close()
		return Stats{}, fmt.Errorf("run %q: %w", spec.Args[0], err)
	}
	defer statR.Close()

	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if netNone {
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
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return Stats{}, fmt.Errorf("creating rootfs mount point %s: %w", cfg.Root, err)
	}
	err = cmd.Start()
	cfgR.Close()
	syncR.Close()
	statW.Close()
	if err != nil {
		return Stats{}, fmt.Errorf("starting sandbox for %q: %w", spec.Args[0], err)
	}
	waitCh := make(chan error, 1)
	go func() { waitCh <- cmd.Wait() }()
	abort := func(err error) (Stats, error) {
		_ = cmd.Process.Kill()
		<-waitCh
		return Stats{}, err
	}

	parent := spec.CgroupParent
	if parent == "" {
		parent = e.cgroupParent
	}
	// Rootless without delegation the sandbox has no cgroup (cg nil):
	// the pid namespace still takes every process down with the init.
	var cg *cgroups.Cgroup
	if e.cgroupErr == nil {
		cg, err = cgroups.New(parent, "builder-"+id)
		if err != nil {
			return abort(fmt.Errorf("run %q: %w", spec.Args[0], err))
		}
		defer cg.Destroy()
		if err := cg.Set(limits); err != nil {
			return abort(fmt.Errorf("run %q: setting limits: %w", spec.Args[0], err))
		}
		if err := cg.Apply(cmd.Process.Pid); err != nil {
			return abort(fmt.Errorf("run %q: %w", spec.Args[0], err))
		}
	}
	statusCh := make(chan initStatus, 1)
	go func() {
		var st initStatus
		data, _ := io.ReadAll(statR)
		if len(data) > 0 {
			if err := json.Unmarshal(data, &st); err != nil {
				st.Error = fmt.Sprintf("sandbox init sent a bad status %q: %v", data, err)
			}
		}
		statusCh <- st
	}()
	// The init blocks on the sync pipe until it is in its cgroup.
	if err := json.NewEncoder(cfgW).Encode(&cfg); err != nil {
		return abort(fmt.Errorf("run %q: sending config to sandbox init: %w", spec.Args[0], err))
	}
	cfgW.Close()
	if _, err := syncW.Write([]byte{1}); err != nil {
		return abort(fmt.Errorf("run %q: starting sandbox init: %w", spec.Args[0], err))
	}

	var waitErr error
	cancelled := false
	select {
	case waitErr = <-waitCh:
	case <-ctx.Done():
		cancelled = true
		// Closing the sync pipe asks the init to kill the command and
		// clean up; if it does not manage within a second, kill the
		// whole cgroup.
		syncW.Close()
		select {
		case waitErr = <-waitCh:
		case <-time.After(killTimeout / 2):
			if cg != nil {
				_ = cg.Kill()
			}
			select {
			case waitErr = <-waitCh:
			case <-time.After(killTimeout / 2):
				_ = cmd.Process.Kill()
				waitErr = <-waitCh
			}
		}
	}
	wall := time.Since(start)
	var cst cgroups.Stats
	var statsErr, destroyErr error
	if cg != nil {
		cst, statsErr = cg.Stats()
	}
	stats := Stats{
		CPUUser:    cst.CPUUser,
		CPUSystem:  cst.CPUSystem,
		MemoryPeak: cst.MemoryPeak,
		IORead:     cst.IORead,
		IOWrite:    cst.IOWrite,
		PidsPeak:   cst.PidsPeak,
		Wall:       wall,
	}
	if cg != nil {
		destroyErr = cg.Destroy()
	}
	st := <-statusCh
	if cg == nil {
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

	if cancelled {
		return stats, fmt.Errorf("run %q: %w", spec.Args[0], ctx.Err())
	}
	if st.Error != "" {
		msg := st.Error
		if st.CleanupError != "" {
			msg += " (cleanup: " + st.CleanupError + ")"
		}
		if st.StartCode != 0 {
			return stats, &StartError{Code: st.StartCode, Err: fmt.Errorf("run %q: %s", spec.Args[0], msg)}
		}
		return stats, fmt.Errorf("run %q: %s", spec.Args[0], msg)
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
				return stats, fmt.Errorf("run %q: sandbox init exited without reporting a status", spec.Args[0])
			}
			return stats, fmt.Errorf("run %q: waiting for sandbox init: %w", spec.Args[0], waitErr)
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
	if exitErr != nil {
		if cst.OOMKills > 0 {
			exitErr.OOMKilled = true
			exitErr.MemoryLimit = spec.Limits.Memory
		}
		return stats, exitErr
	}
	if st.CleanupError != "" {
		return stats, fmt.Errorf("run %q: cleaning up the sandbox: %s", spec.Args[0], st.CleanupError)
	}
	if destroyErr != nil {
		return stats, fmt.Errorf("run %q: %w", spec.Args[0], destroyErr)
	}
	if statsErr != nil {
		return stats, fmt.Errorf("run %q: reading stats: %w", spec.Args[0], statsErr)
	}
	return stats, nil
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
	for _, f := range []string{"hosts", "hostname", "resolv.conf"} {
		_ = os.Remove(filepath.Join(runDir, f))
	}
	_ = unix.Rmdir(filepath.Join(runDir, "rootfs"))
	_ = unix.Rmdir(runDir)
}
