package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// initArg0 is argv[0] of a process started as the sandbox init.
const initArg0 = "builder-sandbox-init"

// File descriptors the init inherits (exec.Cmd.ExtraFiles start at 3).
const (
	fdConfig = 3 // read: JSON initConfig
	fdSync   = 4 // read: one byte once the init is in its cgroup
	fdStatus = 5 // write: JSON initStatus
)

// defaultPath is used to look up Args[0] when Env has no PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// initConfig is what the executor sends to the init.
type initConfig struct {
	Root        string // host directory the rootfs is assembled on
	Rootfs      []Mount
	Mounts      []Mount
	Args        []string
	Env         []string
	Cwd         string
	User        string
	Hostname    string
	NetworkNone bool
	Tty         bool
	// Insecure runs the command with all capabilities, without masked
	// paths and without the device confinement (RUN --security=insecure).
	Insecure     bool
	ResolvConf   string // host files bind-mounted read-only
	Hosts        string
	HostnameFile string
	// ShmSize is the size of /dev/shm in bytes (0: 64 MiB); Ulimits are
	// set on the init before it starts the command.
	ShmSize int64    `json:",omitempty"`
	Ulimits []Ulimit `json:",omitempty"`
	// ExtraHosts are written into Hosts by the executor.
	ExtraHosts []HostIP `json:"-"`
}

// initStatus is what the init reports back: either a setup error or how
// the command ended.
type initStatus struct {
	Error string `json:",omitempty"`
	// StartCode is docker's exit code for a command that could not be
	// started (127 not found, 126 not executable), with Error.
	StartCode    int    `json:",omitempty"`
	Exited       bool   `json:",omitempty"`
	Code         int    `json:",omitempty"`
	Signal       int    `json:",omitempty"`
	CleanupError string `json:",omitempty"`
	// IORead and IOWrite are the bytes the command's whole process tree
	// read from and dirtied for storage (getrusage of the reaped
	// children: the kernel's per-task read_bytes/write_bytes).
	IORead  uint64 `json:",omitempty"`
	IOWrite uint64 `json:",omitempty"`
	// CPUUser, CPUSystem (nanoseconds) and MaxRSS (bytes, the largest
	// process's peak) also come from getrusage: the stats of a sandbox
	// without a cgroup (rootless without delegation).
	CPUUser   int64  `json:",omitempty"`
	CPUSystem int64  `json:",omitempty"`
	MaxRSS    uint64 `json:",omitempty"`
}

// MaybeInit must be called first thing in main() (and in TestMain of test
// binaries that run the executor, which double as the init): when the
// process was started as the sandbox init it runs the init and never
// returns; otherwise it returns at once.
func MaybeInit() {
	if len(os.Args) == 0 || os.Args[0] != initArg0 {
		return
	}
	os.Exit(runInit())
}

func runInit() int {
	// Nothing the init holds may leak into the command: 0, 1 and 2 are
	// the only descriptors without close-on-exec from here on.
	markCloexecFrom(3)
	status := os.NewFile(fdStatus, "status")
	report := func(s initStatus) {
		_ = json.NewEncoder(status).Encode(s)
	}
	var cfg initConfig
	if err := json.NewDecoder(os.NewFile(fdConfig, "config")).Decode(&cfg); err != nil {
		report(initStatus{Error: fmt.Sprintf("sandbox init: reading config: %v", err)})
		return 1
	}
	syncPipe := os.NewFile(fdSync, "sync")
	var b [1]byte
	if n, _ := syncPipe.Read(b[:]); n != 1 {
		// The executor gave up before placing us in the cgroup.
		return 1
	}
	// The executor keeps the sync pipe open while it wants the command to
	// run: EOF (cancellation, or the builder died) kills the command so
	// that the init can still clean up the root filesystem.
	go func() {
		for {
			if _, err := syncPipe.Read(b[:]); err != nil {
				break
			}
		}
		cancelSandbox()
	}()
	unix.Umask(0o022)

	r := &rootfs{root: cfg.Root}
	cmdPid, err := startCommand(&cfg, r)
	if err != nil {
		st := initStatus{Error: err.Error()}
		var sf *startFailure
		if errors.As(err, &sf) {
			st.StartCode = sf.code
		}
		if cerr := r.cleanup(false); cerr != nil {
			st.CleanupError = cerr.Error()
		}
		report(st)
		return 1
	}
	ws := waitCommand(cmdPid)
	if activeTty != nil {
		activeTty.drain(2 * time.Second)
	}
	st := initStatus{Exited: true}
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_CHILDREN, &ru); err == nil {
		st.IORead, st.IOWrite = uint64(ru.Inblock)*512, uint64(ru.Oublock)*512
		st.CPUUser, st.CPUSystem = unix.TimevalToNsec(ru.Utime), unix.TimevalToNsec(ru.Stime)
		st.MaxRSS = uint64(ru.Maxrss) * 1024
	}
	code := 0
	switch {
	case ws.Signaled():
		st.Signal = int(ws.Signal())
		code = 128 + st.Signal
	default:
		st.Code = ws.ExitStatus()
		code = st.Code
	}
	// Only a successful command's rootfs becomes a layer: keep the
	// runtime's mount points there, and leave no trace otherwise.
	cancelMu.Lock()
	keep := code == 0 && !cancelled
	cancelMu.Unlock()
	if err := r.cleanup(keep); err != nil {
		st.CleanupError = err.Error()
	}
	report(st)
	return code
}

var (
	cancelMu  sync.Mutex
	cancelled bool
)

// cancelSandbox kills every other process of the pid namespace and stops
// the command from starting.
func cancelSandbox() {
	cancelMu.Lock()
	defer cancelMu.Unlock()
	cancelled = true
	_ = unix.Kill(-1, unix.SIGKILL)
}

// markCloexecFrom sets close-on-exec on every descriptor >= from.
func markCloexecFrom(from int) {
	if err := unix.CloseRange(uint(from), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		var fd int
		if _, err := fmt.Sscanf(e.Name(), "%d", &fd); err == nil && fd >= from {
			unix.CloseOnExec(fd)
		}
	}
}

// startCommand builds the sandbox and starts the command in it.
func startCommand(cfg *initConfig, r *rootfs) (int, error) {
	if len(cfg.Args) == 0 {
		return 0, errors.New("no command")
	}
	if err := r.setup(cfg); err != nil {
		return 0, err
	}
	if err := r.pivot(); err != nil {
		return 0, err
	}
	hostname := cfg.Hostname
	if hostname == "" {
		hostname = DefaultHostname
	}
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		return 0, fmt.Errorf("setting hostname %q: %w", hostname, err)
	}
	if cfg.NetworkNone {
		if err := loopbackUp(); err != nil {
			return 0, err
		}
	}
	u, err := resolveUserFiles(cfg.User, "/etc/passwd", "/etc/group")
	if err != nil {
		return 0, err
	}
	if err := checkMapped(&u); err != nil {
		return 0, err
	}
	env := append([]string(nil), cfg.Env...)
	if lookupEnv(env, "HOME") == "" {
		env = append(env, "HOME="+u.Home)
	}
	cwd := cfg.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := mkdirAllOwned(cwd, int(u.UID), int(u.GID)); err != nil {
		return 0, err
	}
	path, err := lookPath(cfg.Args[0], lookupEnv(cfg.Env, "PATH"), cwd)
	if err != nil {
		return 0, &startFailure{code: CodeNotFound, err: err}
	}
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT,
		unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH, unix.SIGALRM, unix.SIGCONT)
	cancelMu.Lock()
	defer cancelMu.Unlock()
	if cancelled {
		return 0, errors.New("cancelled")
	}
	if err := setUlimits(cfg.Ulimits); err != nil {
		return 0, err
	}
	stdio := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	if cfg.Tty {
		slave, err := startTtyRelay(int(u.UID))
		if err != nil {
			return 0, err
		}
		// The init keeps no copy: the relay ends when the command's
		// processes close the terminal.
		defer slave.Close()
		stdio = []*os.File{slave, slave, slave}
	}
	p, err := startRestricted(!cfg.Insecure, path, cfg.Args, &os.ProcAttr{
		Dir:   cwd,
		Env:   env,
		Files: stdio,
		Sys: &syscall.SysProcAttr{
			// With setgroups denied (rootless with a single id
			// mapped) there are no supplementary groups to set.
			Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups, NoSetGroups: setgroupsDenied()},
			// With a tty, fd 0 becomes the controlling terminal of a
			// new session, as with docker run -t.
			Setsid:  cfg.Tty,
			Setctty: cfg.Tty,
		},
	})
	if err != nil {
		return 0, &startFailure{code: startCode(err), err: fmt.Errorf("starting %s: %w", cfg.Args[0], err)}
	}
	pid := p.Pid
	go func() {
		for s := range signals {
			if s == unix.SIGWINCH && activeTty != nil {
				// The outer terminal was resized: the inner one
				// signals its foreground process group itself.
				activeTty.resize()
				continue
			}
			_ = unix.Kill(pid, s.(syscall.Signal))
		}
	}()
	return pid, nil
}

// waitCommand reaps children (pid 1 inherits every orphan of the
// namespace) until the command exits, then kills and reaps what is left.
func waitCommand(pid int) unix.WaitStatus {
	var status unix.WaitStatus
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			break
		}
		if got == pid {
			status = ws
			break
		}
	}
	// Background processes die with the step, as in docker build. Kill
	// again after every reap in case something forked meanwhile.
	for {
		_ = unix.Kill(-1, unix.SIGKILL)
		var ws unix.WaitStatus
		_, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			break
		}
	}
	return status
}

func lookupEnv(env []string, key string) string {
	v := ""
	for _, e := range env {
		if k, val, ok := strings.Cut(e, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// lookPath finds file in the PATH of the command's environment.
func lookPath(file, path, cwd string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	if path == "" {
		path = defaultPath
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(cwd, dir)
		}
		p := filepath.Join(dir, file)
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", file)
}

// mkdirAllOwned creates dir and its missing parents owned by uid:gid.
func mkdirAllOwned(dir string, uid, gid int) error {
	dir = filepath.Clean("/" + dir)
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("working directory %s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	if err := mkdirAllOwned(filepath.Dir(dir), uid, gid); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating working directory %s: %w", dir, err)
	}
	if err := os.Lchown(dir, uid, gid); err != nil {
		return fmt.Errorf("chown working directory %s: %w", dir, err)
	}
	return nil
}

// loopbackUp brings lo up in a fresh network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing up lo: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up lo: SIOCGIFFLAGS: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up lo: SIOCSIFFLAGS: %w", err)
	}
	return nil
}

// startFailure is an error starting the command, with the exit code docker
// gives it.
type startFailure struct {
	code int
	err  error
}

func (f *startFailure) Error() string { return f.err.Error() }
func (f *startFailure) Unwrap() error { return f.err }

// startCode is docker's exit code for an exec error: 127 when the file
// does not exist, 126 when it cannot be executed.
func startCode(err error) int {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return CodeNotFound
	}
	return CodeNotExecutable
}
