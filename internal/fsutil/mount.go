package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is mount(2) with data as ParseMountOptions returns it. An overlay
// mount whose data does not fit in the one page mount(2) copies (a deep
// chain of layers) is made with the layer paths relative to their common
// parent directory, the trick containerd and docker use: that changes the
// working directory of the process for the duration of the call, so call
// it only where nothing else depends on the working directory at the same
// time (a locked thread with its own fs attributes, unshare CLONE_FS, or a
// single-purpose process such as a container init).
func Mount(source, target, fstype string, flags uintptr, data string) error {
	if fstype == "overlay" && len(data) >= os.Getpagesize() {
		// Overlay refuses commas in layer paths, so the split is exact.
		return mountOverlayRelative(source, target, flags, strings.Split(data, ","))
	}
	return unix.Mount(source, target, fstype, flags, data)
}

// mountOverlayRelative mounts an overlay whose options are too long for
// one page: it changes to the common parent of all layer dirs and passes
// relative paths.
func mountOverlayRelative(source, target string, flags uintptr, data []string) error {
	target, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	var dirs []string
	for _, o := range data {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			continue
		}
		switch k {
		case "lowerdir":
			dirs = append(dirs, strings.Split(v, ":")...)
		case "upperdir", "workdir":
			dirs = append(dirs, v)
		}
	}
	base := commonDir(dirs)
	if base == "" || base == "/" {
		return fmt.Errorf("overlay mount options are %d bytes and the layers have no common parent", len(strings.Join(data, ",")))
	}
	rel := func(p string) string {
		r, err := filepath.Rel(base, p)
		if err != nil {
			return p
		}
		return r
	}
	out := make([]string, len(data))
	for i, o := range data {
		k, v, ok := strings.Cut(o, "=")
		switch {
		case ok && k == "lowerdir":
			parts := strings.Split(v, ":")
			for j := range parts {
				parts[j] = rel(parts[j])
			}
			out[i] = k + "=" + strings.Join(parts, ":")
		case ok && (k == "upperdir" || k == "workdir"):
			out[i] = k + "=" + rel(v)
		default:
			out[i] = o
		}
	}
	opt := strings.Join(out, ",")
	if len(opt) >= os.Getpagesize() {
		return fmt.Errorf("overlay mount options are %d bytes even relative to %s", len(opt), base)
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if err := unix.Chdir(base); err != nil {
		return fmt.Errorf("chdir %s: %w", base, err)
	}
	merr := unix.Mount(source, target, "overlay", flags, opt)
	if err := unix.Chdir(wd); err != nil && merr == nil {
		merr = fmt.Errorf("chdir back to %s: %w", wd, err)
	}
	if merr != nil {
		return fmt.Errorf("layer paths relative to %s: %w", base, merr)
	}
	return nil
}

// commonDir is the longest common directory of absolute paths.
func commonDir(paths []string) string {
	if len(paths) == 0 {
		return ""
	}
	common := filepath.Dir(filepath.Clean(paths[0]))
	for _, p := range paths[1:] {
		p = filepath.Clean(p)
		for common != "/" && !strings.HasPrefix(p, common+"/") {
			common = filepath.Dir(common)
		}
	}
	if !filepath.IsAbs(common) {
		return ""
	}
	return common
}
