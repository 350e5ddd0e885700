package seccomp

import "golang.org/x/sys/unix"

// auditArch is the AUDIT_ARCH value of this architecture in seccomp_data.
const auditArch = unix.AUDIT_ARCH_X86_64

// x32Bit marks the syscall numbers of the x32 ABI on amd64.
const x32Bit = 0x40000000

// archAllowed are the profile's allowed syscalls only this architecture
// has.
var archAllowed = []string{"arch_prctl", "modify_ldt"}
