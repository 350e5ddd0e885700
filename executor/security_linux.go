package executor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/builderdev/builder/executor/internal/seccomp"
)

// DefaultCapabilities are the capabilities a sandboxed command keeps: the
// default set of docker and BuildKit (runc's default spec).
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// capNumbers maps the names of DefaultCapabilities to their numbers.
var capNumbers = map[string]int{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE,
	"CAP_FSETID": unix.CAP_FSETID, "CAP_FOWNER": unix.CAP_FOWNER,
	"CAP_MKNOD": unix.CAP_MKNOD, "CAP_NET_RAW": unix.CAP_NET_RAW,
	"CAP_SETGID": unix.CAP_SETGID, "CAP_SETUID": unix.CAP_SETUID,
	"CAP_SETFCAP": unix.CAP_SETFCAP, "CAP_SETPCAP": unix.CAP_SETPCAP,
	"CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE, "CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT,
	"CAP_KILL": unix.CAP_KILL, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
}

// MaskedPaths are hidden from a sandboxed command (files behind /dev/null,
// directories behind an empty read-only tmpfs), as in runc's default spec.
var MaskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware", "/sys/devices/virtual/powercap",
}

// ReadonlyPaths are remounted read-only for a sandboxed command.
var ReadonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// capMask returns the bit mask of DefaultCapabilities.
func capMask() uint64 {
	var m uint64
	for _, c := range DefaultCapabilities {
		m |= 1 << uint(capNumbers[c])
	}
	return m
}

// lastCap is the highest capability number the kernel knows.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return unix.CAP_LAST_CAP
}

// restrictThread reduces the calling OS thread to the sandbox's
// privileges: the bounding, permitted, effective and inheritable sets to
// DefaultCapabilities, the ambient set cleared, no_new_privs, and
// Docker's default seccomp profile (package seccomp). The
// thread must be locked and never unlocked: it cannot get its privileges
// back, and the Go runtime must not reuse it.
func restrictThread() error {
	keep := capMask()
	for c := 0; c <= lastCap(); c++ {
		if keep&(1<<uint(c)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clearing the ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(keep), Permitted: uint32(keep), Inheritable: uint32(keep)},
		{Effective: uint32(keep >> 32), Permitted: uint32(keep >> 32), Inheritable: uint32(keep >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("setting capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	// Last: the filter refuses some of the calls above.
	prog, err := seccomp.Filter()
	if err != nil {
		return err
	}
	return seccomp.Install(prog)
}

// startRestricted starts the command from a dedicated OS thread whose
// privileges restrictThread reduced (when restrict is set); the child
// inherits them. The thread ends with its goroutine, so the init keeps
// its own privileges for the cleanup.
func startRestricted(restrict bool, path string, args []string, attr *os.ProcAttr) (*os.Process, error) {
	if !restrict {
		return os.StartProcess(path, args, attr)
	}
	type result struct {
		p   *os.Process
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// No UnlockOSThread: the runtime terminates the thread when
		// this goroutine returns.
		runtime.LockOSThread()
		if err := restrictThread(); err != nil {
			ch <- result{nil, err}
			return
		}
		p, err := os.StartProcess(path, args, attr)
		ch <- result{p, err}
	}()
	r := <-ch
	return r.p, r.err
}

// maskPaths hides MaskedPaths and makes ReadonlyPaths read-only below the
// host path root (before pivot_root); it records the mounts in r. Paths
// the kernel does not have are skipped.
func (r *rootfs) maskPaths() error {
	for _, p := range MaskedPaths {
		host := filepath.Join(r.root, p)
		fi, err := os.Lstat(host)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("masking %s: %w", p, err)
		}
		if fi.IsDir() {
			err = unix.Mount("tmpfs", host, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0,mode=755")
		} else {
			err = unix.Mount("/dev/null", host, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("masking %s: %w", p, err)
		}
		r.mounts = append(r.mounts, p)
	}
	for _, p := range ReadonlyPaths {
		host := filepath.Join(r.root, p)
		if _, err := os.Lstat(host); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("making %s read-only: %w", p, err)
		}
		if err := unix.Mount(host, host, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", p, err)
		}
		r.mounts = append(r.mounts, p)
		flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if err := unix.Mount("", host, "", flags, ""); err != nil {
			return fmt.Errorf("remounting %s read-only: %w", p, err)
		}
	}
	return nil
}

// confineDevices bind-mounts every node of the sandbox's /dev (host path
// dev) onto itself, then remounts the /dev tmpfs nodev: the allowed nodes
// keep working through their own bind mounts, while a node the command
// creates later (CAP_MKNOD is in the default set, as in docker) cannot be
// opened. With the root filesystem and the other mounts also nodev this
// holds on cgroup v2, where there is no devices controller.
func (r *rootfs) confineDevices(dev string) error {
	for _, d := range devNodes {
		p := filepath.Join(dev, d.name)
		if err := unix.Mount(p, p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mounting /dev/%s onto itself: %w", d.name, err)
		}
	}
	if err := unix.Mount("", dev, "", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return fmt.Errorf("remounting /dev nodev: %w", err)
	}
	return nil
}
