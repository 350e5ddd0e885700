package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Return values of the filter.
const (
	retAllow  = unix.SECCOMP_RET_ALLOW
	retEPERM  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retENOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
)

// Offsets in struct seccomp_data (little-endian: the low word of an
// argument comes first).
const (
	offNr   = 0
	offArch = 4
	offArg0 = 16
)

// leafSize is how many syscall numbers a leaf of the search tree
// compares one by one.
const leafSize = 8

// ErrUnsupported is returned on an architecture without a profile.
var ErrUnsupported = errors.New("no seccomp profile for " + runtime.GOARCH)

// Filter returns the default profile as a BPF program for the running
// architecture.
func Filter() ([]unix.SockFilter, error) {
	if auditArch == 0 || len(sysnums) == 0 {
		return nil, ErrUnsupported
	}
	var p []unix.SockFilter
	p = append(p,
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch),
		jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, auditArch, 1, 0),
		stmt(unix.BPF_RET|unix.BPF_K, retEPERM),
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr),
	)
	if x32Bit != 0 {
		// Another ABI's numbers on the same audit arch.
		p = append(p,
			jump(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, x32Bit, 0, 1),
			stmt(unix.BPF_RET|unix.BPF_K, retEPERM))
	}
	special := map[string]bool{}
	if nr, ok := sysnums["clone"]; ok {
		special["clone"] = true
		// Allowed without namespace flags.
		p = appendBlock(p, nr,
			stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArg0),
			stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, cloneNamespaceFlags),
			jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, 0, 1, 0),
			stmt(unix.BPF_RET|unix.BPF_K, retEPERM),
			stmt(unix.BPF_RET|unix.BPF_K, retAllow))
	}
	if nr, ok := sysnums["clone3"]; ok {
		special["clone3"] = true
		// Its flags are behind a pointer: ENOSYS makes libcs fall back
		// to clone.
		p = appendBlock(p, nr, stmt(unix.BPF_RET|unix.BPF_K, retENOSYS))
	}
	if nr, ok := sysnums["socket"]; ok {
		special["socket"] = true
		p = appendBlock(p, nr,
			stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArg0),
			jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, afVsock, 0, 1),
			stmt(unix.BPF_RET|unix.BPF_K, retEPERM),
			stmt(unix.BPF_RET|unix.BPF_K, retAllow))
	}
	if nr, ok := sysnums["personality"]; ok {
		special["personality"] = true
		// The whole 64-bit argument must equal one of the values.
		body := []unix.SockFilter{
			stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArg0+4),
			jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, 0, 0, uint8(len(personalities)+1)),
			stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArg0),
		}
		for i, v := range personalities {
			body = append(body, jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, v, uint8(len(personalities)-i), 0))
		}
		body = append(body, stmt(unix.BPF_RET|unix.BPF_K, retEPERM), stmt(unix.BPF_RET|unix.BPF_K, retAllow))
		p = appendBlock(p, nr, body...)
	}
	p = append(p, searchTree(allowedNumbers(special))...)
	if len(p) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("seccomp filter has %d instructions, more than %d", len(p), unix.BPF_MAXINSNS)
	}
	return p, nil
}

// allowedNumbers are the sorted numbers of the unconditionally allowed
// syscalls this architecture has.
func allowedNumbers(skip map[string]bool) []uint32 {
	var out []uint32
	for _, names := range [][]string{allowed, archAllowed} {
		for _, n := range names {
			if nr, ok := sysnums[n]; ok && !skip[n] {
				out = append(out, nr)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// searchTree returns a binary search over the sorted numbers nrs (the
// syscall number in A): ALLOW for one of them, EPERM otherwise. About
// log2(len/leafSize) range tests and at most leafSize comparisons run per
// syscall, instead of hundreds in a linear list.
func searchTree(nrs []uint32) []unix.SockFilter {
	if len(nrs) <= leafSize {
		var p []unix.SockFilter
		for i, nr := range nrs {
			p = append(p, jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, nr, uint8(len(nrs)-i), 0))
		}
		return append(p, stmt(unix.BPF_RET|unix.BPF_K, retEPERM), stmt(unix.BPF_RET|unix.BPF_K, retAllow))
	}
	mid := len(nrs) / 2
	left, right := searchTree(nrs[:mid]), searchTree(nrs[mid:])
	// A >= nrs[mid]: jump over the left half (ja takes a 32-bit offset,
	// a conditional jump only 8 bits).
	p := []unix.SockFilter{
		jump(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, nrs[mid], 0, 1),
		jump(unix.BPF_JMP|unix.BPF_JA, uint32(len(left)), 0, 0),
	}
	p = append(p, left...)
	return append(p, right...)
}

// appendBlock appends a check of the syscall number (in A) against nr
// that runs body on a match and skips it otherwise. body must end in a
// return.
func appendBlock(p []unix.SockFilter, nr uint32, body ...unix.SockFilter) []unix.SockFilter {
	p = append(p, jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, nr, 0, uint8(len(body))))
	return append(p, body...)
}

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

// Install loads the filter into the calling thread, which must have
// no_new_privs set (or CAP_SYS_ADMIN). Only this thread is filtered, and
// every process it starts inherits the filter: call it on a locked OS
// thread that starts the sandboxed command.
func Install(prog []unix.SockFilter) error {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return fmt.Errorf("installing the seccomp filter: %w", errno)
	}
	return nil
}
