package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// New opens the snapshotter under root. A root keeps the implementation it
// was created with; a new root gets overlay when a test overlay mount
// works under it (root privileges, kernel support, a filesystem that can
// hold an upper dir) and native otherwise. The test mount is made once, when
// the root is new: it costs a mount namespace and two mounts, more than a
// cached build's whole solve.
func New(root string) (Snapshotter, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot root %s: %w", root, err)
	}
	if b, err := os.ReadFile(filepath.Join(abs, "driver")); err == nil {
		// A damaged file names no driver: pick one again (openStore
		// then drops the snapshots nobody knows how to read).
		if n := strings.TrimSpace(string(b)); n == "overlay" || n == "native" {
			return open(abs, n, false)
		}
	}
	if overlaySupported(abs) == nil {
		return open(abs, "overlay", false)
	}
	return open(abs, "native", false)
}

// NewNamed opens the snapshotter implementation name ("overlay" or
// "native") under root. Overlay fails when it cannot be used there.
func NewNamed(root, name string) (Snapshotter, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot root %s: %w", root, err)
	}
	return open(abs, name, true)
}

// open opens implementation name under the absolute root. probe makes the
// test overlay mount; without it overlay only checks what costs nothing
// (the privileges, the root's path), for a root that passed the test when
// it was made.
func open(abs, name string, probe bool) (Snapshotter, error) {
	switch name {
	case "overlay":
		check := overlayPreconditions
		if probe {
			check = overlaySupported
		}
		if err := check(abs); err != nil {
			return nil, fmt.Errorf("overlay snapshotter at %s: %w", abs, err)
		}
		return openStore(abs, newOverlayDriver())
	case "native":
		return openStore(abs, nativeDriver{})
	}
	return nil, fmt.Errorf("unknown snapshotter %q (want overlay or native)", name)
}

// Which says which snapshotter root uses ("overlay" or "native") without
// changing it: the one fixed at its first use, or for a root not used
// yet the one New would choose, probed in a temporary directory (removed
// afterwards) of root's nearest existing ancestor, on the filesystem root
// will be on. chosen is false in the second case.
func Which(root string) (name string, chosen bool, err error) {
	if b, err := os.ReadFile(filepath.Join(root, "driver")); err == nil {
		return strings.TrimSpace(string(b)), true, nil
	}
	dir, err := filepath.Abs(root)
	if err != nil {
		return "", false, fmt.Errorf("snapshot root %s: %w", root, err)
	}
	for {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false, fmt.Errorf("snapshot root %s: no existing ancestor", root)
		}
		dir = parent
	}
	probe, err := os.MkdirTemp(dir, ".builder-probe-")
	if err != nil {
		return "", false, fmt.Errorf("snapshot root %s: %w", root, err)
	}
	defer os.RemoveAll(probe)
	if overlaySupported(probe) == nil {
		return "overlay", false, nil
	}
	return "native", false, nil
}
