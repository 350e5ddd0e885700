//go:build !linux || (!amd64 && !arm64)

package seccomp

const auditArch = 0

const x32Bit = 0

var archAllowed []string

var sysnums map[string]uint32
