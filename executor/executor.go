package executor

import (
	"fmt"
	"io"
	"time"

	"github.com/docker/go-units"
)

// Mount is a mount inside the sandbox. For the root filesystem Target is
// "/". Type/Source/Options are those of mount(2) ("bind" with Options
// "rbind","ro" for bind mounts; "overlay" for overlayfs, "tmpfs").
type Mount struct {
	Type    string
	Source  string
	Target  string
	Options []string
}

// Network is the network namespace mode.
type Network string

// Network modes.
const (
	NetworkHost Network = "host"
	NetworkNone Network = "none"
)

// Limits are cgroup limits; zero values mean unlimited / default.
type Limits struct {
	Memory     int64   // bytes
	MemorySwap int64   // bytes, memory+swap; -1 unlimited; 0 = 2*Memory (docker)
	CPUs       float64 // CPU quota in cores
	CPUShares  uint64
	CpusetCPUs string
	PidsLimit  int64
	// DeviceReadBps and DeviceWriteBps limit the read and write rate of
	// block devices (docker's --device-read-bps, --device-write-bps).
	DeviceReadBps, DeviceWriteBps []DeviceRate
}

// DeviceRate is a rate limit in bytes per second on the block device at
// Path (e.g. /dev/sda).
type DeviceRate struct {
	Path string
	Rate uint64
}

// Security is the sandbox's privilege mode.
type Security string

// Security modes.
const (
	// SecuritySandbox (the default): docker's default capabilities,
	// no_new_privs, docker's default seccomp profile, masked and
	// read-only /proc paths, only the standard devices.
	SecuritySandbox Security = ""
	// SecurityInsecure is RUN --security=insecure: all capabilities, no
	// seccomp filter, no masked paths, no device restrictions (like
	// docker run --privileged).
	SecurityInsecure Security = "insecure"
)

// Spec is one process to run in a fresh sandbox.
type Spec struct {
	// Rootfs are the mounts that assemble the root filesystem, applied in
	// order onto the new root (Target "/").
	Rootfs []Mount
	// Mounts are further mounts; Target is inside the root filesystem.
	Mounts []Mount

	Args []string
	Env  []string
	// Cwd is absolute inside the root; created when missing.
	Cwd string
	// User is "", name, uid, name:group or uid:gid; resolved from the
	// root's /etc/passwd and /etc/group.
	User     string
	Hostname string
	Network  Network

	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Tty runs the command in a session of its own with Stdin as its
	// controlling terminal: Stdin must then be the slave side of a pty
	// (an *os.File), normally also given as Stdout and Stderr.
	Tty bool

	Limits Limits
	// ExtraHosts are added to /etc/hosts (docker --add-host), ShmSize is
	// the size of /dev/shm in bytes (0 = 64 MiB, docker's default) and
	// Ulimits the process's resource limits (docker --ulimit).
	ExtraHosts []HostIP
	ShmSize    int64
	Ulimits    []Ulimit
	// Security is the privilege mode; the zero value is the sandbox.
	Security Security
	// CgroupParent is where the step's cgroup is created, relative to the
	// builder's own cgroup; "" for the builder's own cgroup.
	CgroupParent string
}

// Stats is the resource use of a finished process tree.
type Stats struct {
	CPUUser    time.Duration
	CPUSystem  time.Duration
	MemoryPeak uint64
	IORead     uint64
	IOWrite    uint64
	PidsPeak   uint64
	Wall       time.Duration
}

// Exit codes of a command that could not be started, as docker run and
// a shell give them.
const (
	CodeNotExecutable = 126 // found but not executable (permission, format)
	CodeNotFound      = 127 // no such command or file
)

// StartError is returned when the sandbox was set up but the command could
// not be started: Code is 127 (not found) or 126 (not executable).
type StartError struct {
	Code int
	Err  error
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// ExitError is returned when the process ran and failed.
type ExitError struct {
	Code      int
	Signal    string // set when killed by a signal
	OOMKilled bool
	// MemoryLimit is the limit in force when OOMKilled.
	MemoryLimit int64
}

func (e *ExitError) Error() string {
	switch {
	case e.OOMKilled:
		return fmt.Sprintf("killed: out of memory (limit %s)", formatBytes(e.MemoryLimit))
	case e.Signal != "":
		return fmt.Sprintf("killed by signal %s", e.Signal)
	default:
		return fmt.Sprintf("exit code: %d", e.Code)
	}
}

func formatBytes(n int64) string {
	if n <= 0 {
		return "none"
	}
	return units.BytesSize(float64(n))
}
