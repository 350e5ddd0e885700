package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxSymlinks bounds symlink resolution, like the kernel's ELOOP limit.
const maxSymlinks = 255

// ResolveInRoot resolves unsafePath inside root as if root were "/": ".."
// never climbs above root and every symlink met on the way, absolute or
// relative, is resolved relative to root. The last component is resolved too
// unless it is missing. It returns a host path under root. Missing
// components are allowed; they are kept as they are.
func ResolveInRoot(root, unsafePath string) (string, error) {
	return resolve(root, unsafePath, true)
}

// ResolveParentInRoot is ResolveInRoot but leaves the last component
// unresolved (for lstat, unlink, or creating a symlink at the path).
func ResolveParentInRoot(root, unsafePath string) (string, error) {
	dir, base := filepath.Split(filepath.Clean("/" + unsafePath))
	if base == "" || base == "/" {
		return filepath.Clean(root), nil
	}
	p, err := resolve(root, dir, true)
	if err != nil {
		return "", err
	}
	return filepath.Join(p, base), nil
}

func resolve(root, unsafePath string, followLast bool) (string, error) {
	root = filepath.Clean(root)
	// pending holds the components still to walk; done is the resolved
	// path relative to root.
	pending := strings.Split(filepath.ToSlash(unsafePath), "/")
	var done []string
	links := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := filepath.Join(append([]string{root}, append(done, c)...)...)
		if len(pending) == 0 && !followLast {
			done = append(done, c)
			break
		}
		fi, err := os.Lstat(cur)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				done = append(done, c)
				continue
			}
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		links++
		if links > maxSymlinks {
			return "", fmt.Errorf("resolving %q in %s: too many levels of symbolic links", unsafePath, root)
		}
		target, err := os.Readlink(cur)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			done = nil
		}
		pending = append(strings.Split(target, "/"), pending...)
	}
	return filepath.Join(append([]string{root}, done...)...), nil
}
