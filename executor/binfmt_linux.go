package executor

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
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
//
// When builder runs in a user namespace of its own (rootless, see
// MaybeUnshare) and the kernel has binfmt_misc per user namespace (Linux
// 6.7 and later), a missing handler is registered for that namespace only
// (registerPrivate): no host-wide set-up is needed. BUILDER_BINFMT=host
// never does that; BUILDER_BINFMT=private always does (rootless only),
// even when the host has a handler.
func CheckEmulation(arch string) error {
	if Native(arch) {
		return nil
	}
	mode := os.Getenv("BUILDER_BINFMT")
	var err error
	if mode != "private" {
		if err = checkHandler(arch); err == nil || mode == "host" {
			return err
		}
	}
	if !ownUserNS {
		if err == nil { // BUILDER_BINFMT=private as root
			err = errors.New("BUILDER_BINFMT=private needs builder to run rootless, in the user namespace it makes: as root it would register for every process of the machine (or of its container)")
		}
		return err
	}
	perr := registerPrivate(arch)
	if perr == nil {
		return nil
	}
	if err == nil {
		return perr
	}
	return fmt.Errorf("%w (registering QEMU for builder's user namespace only failed too: %v)", err, perr)
}

// checkHandler is CheckEmulation's look at the registered handlers.
func checkHandler(arch string) error {
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

// ownUserNS is set by MaybeUnshare in the user (and mount) namespace it
// made for a rootless builder: the only place where registerPrivate may
// register, since nothing else lives in that namespace. (Root in a
// container's user namespace shares it with the container.)
var ownUserNS bool

var private struct {
	sync.Mutex
	dir  string // where this process mounted its namespace's binfmt_misc
	done map[string]error
}

// registerPrivate registers QEMU for arch with binfmt_misc in this
// process's user namespace only: it mounts binfmt_misc (a new instance,
// owned by the namespace) in builder's private mount namespace and
// registers the emulator as Debian's qemu-user-static does (flags PF: the
// kernel opens the emulator now, so it works inside sandboxes, and passes
// argv[0] on). Sandboxes started by this process see that instance; the
// host's handlers do not change. It needs Linux 6.7 or later.
func registerPrivate(arch string) error {
	private.Lock()
	defer private.Unlock()
	if err, ok := private.done[arch]; ok {
		return err
	}
	err := registerPrivateLocked(arch)
	if private.done == nil {
		private.done = map[string]error{}
	}
	private.done[arch] = err
	return err
}

func registerPrivateLocked(arch string) error {
	head, ok := elfHeader(arch)
	if !ok {
		return fmt.Errorf("no emulation is known for %s", arch)
	}
	q := qemuName(arch)
	interp, flags := "/usr/libexec/qemu-binfmt/"+q+"-binfmt-P", "PF"
	if _, err := os.Stat(interp); err != nil {
		interp, flags = "/usr/bin/qemu-"+q+"-static", "F"
		if _, err := os.Stat(interp); err != nil {
			return fmt.Errorf("no QEMU user emulator for %s (%s): install qemu-user-static", arch, interp)
		}
	}
	if private.dir == "" {
		// Over the host's mount point, in builder's own mount namespace:
		// nothing is left behind when the namespace goes.
		const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
		if err := unix.Mount("binfmt_misc", BinfmtDir, "binfmt_misc", flags, ""); err != nil {
			return fmt.Errorf("mounting binfmt_misc for builder's user namespace (Linux 6.7 or later): %w", err)
		}
		private.dir = BinfmtDir
	}
	name := "builder-qemu-" + q
	if _, err := os.Stat(filepath.Join(private.dir, name)); err == nil {
		return nil
	}
	// The handler matches what Debian's matches: e_ident but the OS ABI,
	// e_type EXEC or DYN, e_machine.
	magic := head[:20]
	mask := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff}
	if head[5] == 2 { // big endian: e_type's low byte comes second
		mask[16], mask[17] = 0xff, 0xfe
	}
	line := fmt.Sprintf(":%s:M:0:%s:%s:%s:%s", name, hexEscape(magic), hexEscape(mask), interp, flags)
	if err := os.WriteFile(filepath.Join(private.dir, "register"), []byte(line), 0); err != nil {
		return fmt.Errorf("registering %s with binfmt_misc: %w", interp, err)
	}
	return nil
}

// hexEscape writes b as binfmt_misc's \xHH escapes.
func hexEscape(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, "\\x%02x", c)
	}
	return sb.String()
}
