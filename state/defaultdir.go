package state

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/builderdev/builder/executor"
)

// DefaultDir is where the state root is when none is given: $BUILDER_ROOT,
// else /var/lib/builder for root, else the user's data directory.
func DefaultDir() string {
	if v := os.Getenv("BUILDER_ROOT"); v != "" {
		return v
	}
	// A rootless builder is root of its user namespace: its state
	// belongs in the user's directories all the same.
	if os.Geteuid() == 0 && !executor.Rootless() {
		return "/var/lib/builder"
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "builder")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), fmt.Sprintf("builder-%d", os.Getuid()))
	}
	return filepath.Join(home, ".local", "share", "builder")
}
