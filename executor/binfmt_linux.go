package executor

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// BinfmtDir is where the kernel's binfmt_misc is mounted.
var BinfmtDir = "/proc/sys/fs/binfmt_misc"

// elfMachines are the ELF header bits of a Linux executable of each
// architecture: class (1 = 32, 2 = 64 bit), byte order (1 little, 2 big)
// and e_machine.
var elfMachines = map[string]struct {
	class, data byte
	machine     uint16
}{
	"amd64":    {2, 1, 62},
	"386":      {1, 1, 3},
	"arm64":    {2, 1, 183},
	"arm":      {1, 1, 40},
	"ppc64le":  {2, 1, 21},
	"s390x":    {2, 2, 22},
	"riscv64":  {2, 1, 243},
	"mips64le": {2, 1, 8},
	"loong64":  {2, 1, 258},
}

// elfHeader is the first 64 bytes of an executable of arch.
func elfHeader(arch string) ([]byte, bool) {
	m, ok := elfMachines[arch]
	if !ok {
		return nil, false
	}
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = m.class, m.data, 1
	var order binary.ByteOrder = binary.LittleEndian
	if m.data == 2 {
		order = binary.BigEndian
	}
	order.PutUint16(h[16:], 2) // ET_EXEC
	order.PutUint16(h[18:], m.machine)
	return h, true
}

// binfmtEntry is one registered binfmt_misc handler.
type binfmtEntry struct {
	name, interpreter, flags string
	enabled                  bool
	offset                   int
	magic, mask              []byte
}

func readBinfmtEntry(p string) (binfmtEntry, error) {
	raw, err := os.ReadFile(p)
	if err != nil {
		return binfmtEntry{}, err
	}
	e := binfmtEntry{name: filepath.Base(p)}
	for _, l := range strings.Split(string(raw), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		switch k {
		case "enabled":
			e.enabled = true
		case "interpreter":
			e.interpreter = v
		case "flags:":
			e.flags = v
		case "offset":
			e.offset, _ = strconv.Atoi(v)
		case "magic":
			e.magic, _ = hex.DecodeString(v)
		case "mask":
			e.mask, _ = hex.DecodeString(v)
		}
	}
	return e, nil
}

// matches says whether the handler runs a file starting with head.
func (e binfmtEntry) matches(head []byte) bool {
	if len(e.magic) == 0 || e.offset+len(e.magic) > len(head) {
		return false
	}
	for i, b := range e.magic {
		m := byte(0xff)
		if i < len(e.mask) {
			m = e.mask[i]
		}
		if head[e.offset+i]&m != b&m {
			return false
		}
	}
	return true
}

// Native says whether this machine runs executables of arch (a GOARCH
// name) without emulation.
func Native(arch string) bool {
	return arch == runtime.GOARCH || (runtime.GOARCH == "amd64" && arch == "386")
}

// CheckEmulation returns nil when a RUN for arch (a GOARCH name) can
// execute here: natively, or through a binfmt_misc handler (QEMU user
// emulation) registered with the F flag, whose interpreter the kernel
// opened at registration and so works inside the sandbox's root. The
// handler is the one the kernel sees from this process: the host's, or,
// on Linux 6.7 and later, the one of the user namespace builder runs in.
// The error says what to install or mount.
func CheckEmulation(arch string) error {
	if Native(arch) {
		return nil
	}
	const fix = "install QEMU user emulation (Debian: apt-get install qemu-user-static binfmt-support)"
	head, ok := elfHeader(arch)
	if !ok {
		return fmt.Errorf("cannot run executables of architecture %s on %s: no emulation is known for it", arch, runtime.GOARCH)
	}
	if _, err := os.Stat(filepath.Join(BinfmtDir, "status")); err != nil {
		return fmt.Errorf("cannot run %s executables on this %s machine: binfmt_misc is not mounted at %s (mount -t binfmt_misc binfmt_misc %s), and %s", arch, runtime.GOARCH, BinfmtDir, BinfmtDir, fix)
	}
	if st, err := os.ReadFile(filepath.Join(BinfmtDir, "status")); err == nil && strings.TrimSpace(string(st)) != "enabled" {
		return fmt.Errorf("cannot run %s executables on this %s machine: binfmt_misc is disabled (echo 1 > %s/status)", arch, runtime.GOARCH, BinfmtDir)
	}
	ents, err := os.ReadDir(BinfmtDir)
	if err != nil {
		return fmt.Errorf("binfmt_misc: %w", err)
	}
	var noF, interp []string
	for _, d := range ents {
		if d.Name() == "status" || d.Name() == "register" {
			continue
		}
		e, err := readBinfmtEntry(filepath.Join(BinfmtDir, d.Name()))
		if err != nil || !e.enabled || !e.matches(head) {
			continue
		}
		if !strings.Contains(e.flags, "F") {
			noF, interp = append(noF, e.name), append(interp, e.interpreter)
			continue
		}
		return nil
	}
	if len(noF) > 0 {
		return fmt.Errorf("cannot run %s executables in the build sandbox: the binfmt_misc handler %s was registered without the F (fix binary) flag, so its interpreter %s is not reachable inside the image; register it with F (Debian's qemu-user-static does)",
			arch, strings.Join(noF, ", "), strings.Join(interp, ", "))
	}
	return fmt.Errorf("cannot run %s executables on this %s machine: no binfmt_misc handler is registered for them; %s, or enable it (update-binfmts --enable qemu-%s)", arch, runtime.GOARCH, fix, qemuName(arch))
}

// qemuName is QEMU's name of arch.
func qemuName(arch string) string {
	switch arch {
	case "arm64":
		return "aarch64"
	case "amd64":
		return "x86_64"
	case "386":
		return "i386"
	case "ppc64le":
		return "ppc64le"
	case "loong64":
		return "loongarch64"
	}
	return arch
}
