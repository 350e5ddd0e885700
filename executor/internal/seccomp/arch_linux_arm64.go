package seccomp

import "golang.org/x/sys/unix"

// auditArch is the AUDIT_ARCH value of this architecture in seccomp_data.
const auditArch = unix.AUDIT_ARCH_AARCH64

// x32Bit is zero: arm64 has no second ABI on the same audit arch.
const x32Bit = 0

// archAllowed are the profile's allowed syscalls only arm and arm64 have
// (most of them exist only on arm32; names unknown here are skipped).
var archAllowed = []string{"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"}
