package seccomp

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// eval runs prog on a seccomp_data of this architecture, as the kernel's
// classic BPF interpreter does for the instructions Filter emits.
func eval(t *testing.T, prog []unix.SockFilter, arch, nr uint32, args ...uint64) uint32 {
	t.Helper()
	data := make([]byte, 64)
	binary.LittleEndian.PutUint32(data[offNr:], nr)
	binary.LittleEndian.PutUint32(data[offArch:], arch)
	for i, a := range args {
		binary.LittleEndian.PutUint64(data[offArg0+8*i:], a)
	}
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			acc = binary.LittleEndian.Uint32(data[in.K:])
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			acc &= in.K
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			if acc == in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			if acc >= in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		default:
			t.Fatalf("instruction %d: unknown code %#x", pc, in.Code)
		}
	}
	t.Fatal("the program ran off its end")
	return 0
}

// TestFilterDecisions checks the profile's decisions on the calls that
// matter: the classes a hostile RUN would use are refused, ordinary calls
// pass, argument rules follow Docker's.
func TestFilterDecisions(t *testing.T) {
	prog, err := Filter()
	if err == ErrUnsupported {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	nr := func(name string) uint32 {
		n, ok := sysnums[name]
		if !ok {
			t.Fatalf("no syscall %s here", name)
		}
		return n
	}
	for _, tc := range []struct {
		name string
		args []uint64
		want uint32
	}{
		{"read", nil, retAllow},
		{"execve", nil, retAllow},
		{"openat", nil, retAllow},
		{"wait4", nil, retAllow},
		{"chroot", nil, retAllow},
		{"ptrace", nil, retAllow},
		{"clone", []uint64{unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD | unix.CLONE_SYSVSEM | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID}, retAllow},
		{"clone", []uint64{unix.CLONE_VFORK | unix.CLONE_VM | unix.CLONE_PIDFD | uint64(unix.SIGCHLD)}, retAllow},
		{"clone", []uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, retEPERM},
		{"clone", []uint64{unix.CLONE_NEWNS}, retEPERM},
		{"clone", []uint64{unix.CLONE_NEWNET | unix.CLONE_NEWPID}, retEPERM},
		{"clone", []uint64{unix.CLONE_NEWCGROUP}, retEPERM},
		{"clone3", nil, retENOSYS},
		{"unshare", []uint64{unix.CLONE_NEWUSER}, retEPERM},
		{"setns", nil, retEPERM},
		{"mount", nil, retEPERM},
		{"umount2", nil, retEPERM},
		{"fsopen", nil, retEPERM},
		{"open_tree", nil, retEPERM},
		{"keyctl", nil, retEPERM},
		{"add_key", nil, retEPERM},
		{"request_key", nil, retEPERM},
		{"bpf", nil, retEPERM},
		{"perf_event_open", nil, retEPERM},
		{"kexec_load", nil, retEPERM},
		{"kexec_file_load", nil, retEPERM},
		{"init_module", nil, retEPERM},
		{"finit_module", nil, retEPERM},
		{"reboot", nil, retEPERM},
		{"userfaultfd", nil, retEPERM},
		{"io_uring_setup", nil, retEPERM},
		{"io_uring_enter", nil, retEPERM},
		{"settimeofday", nil, retEPERM},
		{"swapon", nil, retEPERM},
		{"sethostname", nil, retEPERM},
		{"socket", []uint64{unix.AF_INET, unix.SOCK_STREAM}, retAllow},
		{"socket", []uint64{unix.AF_UNIX, unix.SOCK_DGRAM}, retAllow},
		{"socket", []uint64{unix.AF_VSOCK, unix.SOCK_STREAM}, retEPERM},
		{"personality", []uint64{0}, retAllow},
		{"personality", []uint64{0x8}, retAllow},
		{"personality", []uint64{0xffffffff}, retAllow},
		{"personality", []uint64{0x0040000 /* ADDR_NO_RANDOMIZE */}, retEPERM},
		{"personality", []uint64{1<<32 | 0x8}, retEPERM},
	} {
		if got := eval(t, prog, auditArch, nr(tc.name), tc.args...); got != tc.want {
			t.Errorf("%s(%#x) = %#x, want %#x", tc.name, tc.args, got, tc.want)
		}
	}
	if got := eval(t, prog, auditArch, 4095); got != retEPERM {
		t.Errorf("unknown syscall 4095 = %#x, want EPERM", got)
	}
	if got := eval(t, prog, unix.AUDIT_ARCH_I386, nr("read")); got != retEPERM {
		t.Errorf("a call of another audit arch = %#x, want EPERM", got)
	}
	if x32Bit != 0 {
		if got := eval(t, prog, auditArch, x32Bit|nr("read")); got != retEPERM {
			t.Errorf("an x32 call = %#x, want EPERM", got)
		}
	}
	// Every name of the allow list this architecture has is allowed.
	for _, n := range allowedNumbers(nil) {
		if n == nr("clone") || n == nr("socket") || n == nr("personality") {
			continue
		}
		if got := eval(t, prog, auditArch, n); got != retAllow {
			t.Errorf("allowed syscall %d = %#x", n, got)
		}
	}
}

// TestFilterIsShallow: the search tree keeps the path of any syscall
// short.
func TestFilterIsShallow(t *testing.T) {
	prog, err := Filter()
	if err == ErrUnsupported {
		t.Skip(err)
	}
	steps := 0
	// Count the instructions run for the highest number (the longest
	// path through the special rules and the tree).
	nr := uint32(0)
	for _, n := range sysnums {
		nr = max(nr, n)
	}
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		steps++
		in := prog[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			acc = map[uint32]uint32{offNr: nr, offArch: auditArch}[in.K]
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			if acc == in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			if acc >= in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			pc = len(prog)
		default:
			t.Fatalf("unexpected instruction %#x on the path of syscall %d", in.Code, nr)
		}
	}
	if steps > 40 {
		t.Errorf("syscall %d runs %d instructions of %d", nr, steps, len(prog))
	}
}
