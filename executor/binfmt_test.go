package executor

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Debian's qemu-user-static registration of qemu-aarch64.
const aarch64Entry = `enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: %s
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
`

func TestCheckEmulation(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the fixtures emulate arm64 on amd64")
	}
	// Only the fixtures: no registration for a user namespace, were the
	// test running in one.
	t.Setenv("BUILDER_BINFMT", "host")
	for _, tt := range []struct {
		name  string
		files map[string]string // "" dir = binfmt_misc not mounted
		arch  string
		err   string
	}{
		{"native", nil, "amd64", ""},
		{"386 on amd64", nil, "386", ""},
		{"not mounted", nil, "arm64", "binfmt_misc is not mounted"},
		{"no handler", map[string]string{"status": "enabled\n"}, "arm64", "no binfmt_misc handler is registered for them; install QEMU user emulation (Debian: apt-get install qemu-user-static binfmt-support), or enable it (update-binfmts --enable qemu-aarch64)"},
		{"disabled", map[string]string{"status": "disabled\n"}, "arm64", "binfmt_misc is disabled"},
		{"handler", map[string]string{"status": "enabled\n", "qemu-aarch64": strings.Replace(aarch64Entry, "%s", "PF", 1)}, "arm64", ""},
		{"handler without F", map[string]string{"status": "enabled\n", "qemu-aarch64": strings.Replace(aarch64Entry, "%s", "P", 1)}, "arm64", "registered without the F (fix binary) flag"},
		{"handler disabled", map[string]string{"status": "enabled\n", "qemu-aarch64": "disabled\n" + strings.TrimPrefix(strings.Replace(aarch64Entry, "%s", "PF", 1), "enabled\n")}, "arm64", "no binfmt_misc handler"},
		{"other arch's handler", map[string]string{"status": "enabled\n", "qemu-aarch64": strings.Replace(aarch64Entry, "%s", "PF", 1)}, "riscv64", "no binfmt_misc handler"},
		{"unknown arch", map[string]string{"status": "enabled\n"}, "sparc64", "no emulation is known"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "binfmt_misc")
			if tt.files != nil {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for n, c := range tt.files {
					if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			old := BinfmtDir
			BinfmtDir = dir
			defer func() { BinfmtDir = old }()
			err := CheckEmulation(tt.arch)
			if tt.err == "" && err != nil {
				t.Fatalf("CheckEmulation(%s) = %v", tt.arch, err)
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("CheckEmulation(%s) = %v, want %q", tt.arch, err, tt.err)
			}
		})
	}
}

func TestHexEscape(t *testing.T) {
	if got := hexEscape([]byte{0x7f, 'E', 0}); got != `\x7f\x45\x00` {
		t.Errorf("hexEscape = %q", got)
	}
}
