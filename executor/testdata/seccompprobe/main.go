// Command seccompprobe makes one call of each class the sandbox's seccomp
// filter refuses and of a few it allows, and prints "name: result" per
// call, result being "ok" or the errno's name. Built static by the
// executor's tests and run inside a sandbox: as a Go program it also
// shows that threads and fork+exec work under the filter.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

func result(err error) string {
	var en unix.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &en):
		return unix.ErrnoName(en)
	}
	return err.Error()
}

func errno(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func main() {
	probes := []struct {
		name string
		call func() error
	}{
		{"unshare-user", func() error { return unix.Unshare(unix.CLONE_NEWUSER) }},
		{"unshare-mount", func() error { return unix.Unshare(unix.CLONE_NEWNS) }},
		{"clone-newuser", func() error {
			pid, _, e := unix.RawSyscall6(unix.SYS_CLONE, unix.CLONE_NEWUSER|uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
			if e == 0 && pid == 0 {
				unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
			}
			if e == 0 {
				var ws unix.WaitStatus
				unix.Wait4(int(pid), &ws, 0, nil)
			}
			return errno(e)
		}},
		{"clone3", func() error {
			_, _, e := unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
			return errno(e)
		}},
		{"mount", func() error { return unix.Mount("none", "/mnt", "tmpfs", 0, "") }},
		{"add_key", func() error {
			_, err := unix.AddKey("user", "probe", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
			return err
		}},
		{"keyctl", func() error {
			_, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, true)
			return err
		}},
		{"bpf", func() error {
			_, _, e := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, 0, 0)
			return errno(e)
		}},
		{"perf_event_open", func() error {
			attr := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_CPU_CLOCK}
			attr.Size = uint32(unsafe.Sizeof(attr))
			fd, err := unix.PerfEventOpen(&attr, 0, -1, -1, 0)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}},
		{"kexec_load", func() error {
			_, _, e := unix.Syscall6(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0, 0, 0)
			return errno(e)
		}},
		{"personality-norandom", func() error {
			_, _, e := unix.Syscall(unix.SYS_PERSONALITY, 0x0040000, 0, 0)
			return errno(e)
		}},
		{"personality-query", func() error {
			_, _, e := unix.Syscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
			return errno(e)
		}},
		{"socket-vsock", func() error {
			fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}},
		{"socket-inet", func() error {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}},
		{"threads", func() error {
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() { defer wg.Done(); _, _ = os.ReadDir("/") }()
			}
			wg.Wait()
			return nil
		}},
		{"fork-exec", func() error { return exec.Command("/bin/true").Run() }},
	}
	for _, p := range probes {
		fmt.Printf("%s: %s\n", p.name, result(p.call()))
	}
}
