package executor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/builderdev/builder/internal/fsutil"
)

// mountAt mounts m on the host path target.
func mountAt(m Mount, target string) error {
	flags, prop, data := fsutil.ParseMountOptions(m.Options)
	if m.Type == "bind" && flags&unix.MS_BIND == 0 {
		flags |= unix.MS_BIND | unix.MS_REC
	}
	if flags&unix.MS_BIND != 0 {
		if err := unix.Mount(m.Source, target, "", flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
			return fmt.Errorf("bind-mounting %s on %s: %w", m.Source, target, err)
		}
		// Bind mounts ignore all other flags until remounted.
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
			if Rootless() {
				// A user namespace cannot clear the flags its parent
				// namespace set on the source: keep them.
				rest |= lockedFlags(target)
			}
			if err := unix.Mount("", target, "", rest|unix.MS_BIND|unix.MS_REMOUNT, ""); err != nil {
				return fmt.Errorf("remounting %s with %v: %w", target, m.Options, err)
			}
		}
	} else {
		src := m.Source
		if src == "" {
			src = m.Type
		}
		// fsutil.Mount may chdir for a long overlay: the init is
		// single-purpose and uses absolute paths only.
		if err := fsutil.Mount(src, target, m.Type, flags, data); err != nil {
			return fmt.Errorf("mounting %s (%s, %v) on %s: %w", src, m.Type, m.Options, target, err)
		}
	}
	if prop != 0 {
		if err := unix.Mount("", target, "", prop, ""); err != nil {
			return fmt.Errorf("setting propagation of %s: %w", target, err)
		}
	}
	return nil
}

// stub is a mount point the sandbox created in the root filesystem because
// the image did not have it; it is removed again after the run so that the
// layer only holds what the command wrote.
type stub struct {
	path  string // inside the root ("/etc/hosts")
	isDir bool
	// parent times before and just after the stub was created, to undo
	// the stub's effect on the parent's mtime.
	parentATime, parentMTime, parentMTimeAfter time.Time
	top                                        bool // parent existed before
}

// keptMountPoints are the stubs left in the root filesystem: BuildKit's
// rootful runc executor leaves the /proc, /dev and /sys mount points in the
// first RUN layer of an image that lacks them, and images must match.
var keptMountPoints = map[string]bool{"/proc": true, "/dev": true, "/sys": true}

// rootfs assembles the sandbox's root filesystem on the host path root
// and remembers what it must undo.
type rootfs struct {
	root    string
	mounts  []string // inside the root, in mount order
	stubs   []stub
	created map[string]bool
}

// target resolves p inside the root without escaping it and creates it
// (and missing parents) as a directory or an empty file when it does not
// exist, recording what it created. It returns the host path.
func (r *rootfs) target(p string, dir bool) (string, error) {
	host, err := fsutil.ResolveInRoot(r.root, p)
	if err != nil {
		// Not the host path: the rootfs is a directory of the state
		// root the user never named.
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
		}
		return "", fmt.Errorf("resolving mount target %s in rootfs: %w", p, err)
	}
	rel, err := filepath.Rel(r.root, host)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("mount target %s escapes the rootfs", p)
	}
	if rel == "." {
		return host, nil
	}
	comps := strings.Split(rel, "/")
	cur := r.root
	for i, c := range comps {
		parent := cur
		cur = filepath.Join(cur, c)
		last := i == len(comps)-1
		fi, err := os.Lstat(cur)
		if err == nil {
			switch {
			case !last && !fi.IsDir():
				return "", fmt.Errorf("mount target %s: %s is not a directory", p, "/"+filepath.Join(comps[:i+1]...))
			case last && dir && !fi.IsDir():
				return "", fmt.Errorf("mount target %s is not a directory", p)
			case last && !dir && fi.IsDir():
				return "", fmt.Errorf("mount target %s is a directory, the mount source is a file", p)
			}
			continue
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("mount target %s: %w", p, err)
		}
		s := stub{path: "/" + filepath.Join(comps[:i+1]...), isDir: dir || !last}
		if !r.created[parent] {
			s.top = true
			if pst, err := os.Stat(parent); err == nil {
				s.parentATime = atime(pst)
				s.parentMTime = pst.ModTime()
			}
		}
		if s.isDir {
			err = os.Mkdir(cur, 0o755)
		} else {
			var f *os.File
			f, err = os.OpenFile(cur, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err == nil {
				err = f.Close()
			}
		}
		if errors.Is(err, os.ErrExist) {
			// Made meanwhile by another sandbox sharing this directory (a
			// shared cache mount holding another mount's target): not
			// ours to remove. It was not there when the path was
			// resolved, so only what we would have made is taken (a
			// symlink put there would move the mount).
			fi, lerr := os.Lstat(cur)
			switch {
			case lerr != nil:
				return "", fmt.Errorf("creating mount point %s: %w", s.path, lerr)
			case s.isDir && !fi.IsDir():
				return "", fmt.Errorf("mount target %s: %s is not a directory", p, s.path)
			case !s.isDir && !fi.Mode().IsRegular():
				return "", fmt.Errorf("mount target %s: %s is not a regular file", p, s.path)
			}
			continue
		}
		if err != nil {
			return "", fmt.Errorf("creating mount point %s: %w", s.path, err)
		}
		if s.top {
			if pst, err := os.Stat(parent); err == nil {
				s.parentMTimeAfter = pst.ModTime()
			}
		}
		if r.created == nil {
			r.created = map[string]bool{}
		}
		r.created[cur] = true
		r.stubs = append(r.stubs, s)
	}
	return host, nil
}

func atime(fi os.FileInfo) time.Time {
	if st, ok := fi.Sys().(*unix.Stat_t); ok {
		return time.Unix(st.Atim.Sec, st.Atim.Nsec)
	}
	return fi.ModTime()
}

// mount mounts m at the path m.Target inside the root, creating a stub
// mount point when needed.
func (r *rootfs) mount(m Mount) error {
	dir := true
	flags, _, _ := fsutil.ParseMountOptions(m.Options)
	if m.Type == "bind" || flags&unix.MS_BIND != 0 {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("bind mount source for %s: %w", m.Target, err)
		}
		dir = fi.IsDir()
	}
	host, err := r.target(m.Target, dir)
	if err != nil {
		return err
	}
	if err := mountAt(m, host); err != nil {
		return err
	}
	rel, _ := filepath.Rel(r.root, host)
	r.mounts = append(r.mounts, "/"+rel)
	return nil
}

type devNode struct {
	name         string
	major, minor uint32
}

var devNodes = []devNode{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
	{"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

// setupDev fills the tmpfs mounted at the host path dev; /dev/shm gets
// shmSize bytes (0: 64 MiB, docker's default).
func setupDev(dev string, shmSize int64) error {
	for _, d := range devNodes {
		p := filepath.Join(dev, d.name)
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			// Without CAP_MKNOD (or with a devices cgroup that forbids
			// it) bind the host's node instead.
			if err := os.WriteFile(p, nil, 0o666); err != nil {
				return fmt.Errorf("creating /dev/%s: %w", d.name, err)
			}
			if err := unix.Mount("/dev/"+d.name, p, "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("bind-mounting /dev/%s: %w", d.name, err)
			}
			continue
		}
		if err := os.Chmod(p, 0o666); err != nil {
			return fmt.Errorf("chmod /dev/%s: %w", d.name, err)
		}
	}
	pts := filepath.Join(dev, "pts")
	if err := os.Mkdir(pts, 0o755); err != nil {
		return fmt.Errorf("creating /dev/pts: %w", err)
	}
	if err := unix.Mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"); err != nil {
		// In a user namespace that does not map gid 5 (tty) devpts
		// refuses gid=5: the ptys then belong to the opener's group.
		if err2 := unix.Mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err2 != nil {
			return fmt.Errorf("mounting devpts on /dev/pts: %w", err)
		}
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o1777); err != nil {
		return fmt.Errorf("creating /dev/shm: %w", err)
	}
	size := "65536k" // docker's default
	if shmSize > 0 {
		size = strconv.FormatInt(shmSize, 10)
	}
	if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size="+size); err != nil {
		return fmt.Errorf("mounting tmpfs on /dev/shm: %w", err)
	}
	links := [][2]string{
		{"pts/ptmx", "ptmx"},
		{"/proc/self/fd", "fd"},
		{"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"},
	}
	for _, l := range links {
		if err := os.Symlink(l[0], filepath.Join(dev, l[1])); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

// setup mounts the root filesystem, the special filesystems and the
// configured mounts, all below the host path r.root.
func (r *rootfs) setup(cfg *initConfig) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / rprivate: %w", err)
	}
	if len(cfg.Rootfs) == 0 {
		return errors.New("no root filesystem mounts")
	}
	for _, m := range cfg.Rootfs {
		if !cfg.Insecure {
			m.Options = withNodev(m.Options)
		}
		target := r.root
		if m.Target != "" && m.Target != "/" {
			var err error
			if target, err = fsutil.ResolveInRoot(r.root, m.Target); err != nil {
				return fmt.Errorf("resolving rootfs mount target %s: %w", m.Target, err)
			}
		}
		if err := mountAt(m, target); err != nil {
			return fmt.Errorf("mounting rootfs: %w", err)
		}
	}
	// pivot_root needs the new root to be a mount point of its own.
	if err := unix.Mount(r.root, r.root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mounting rootfs %s onto itself: %w", r.root, err)
	}

	if err := r.mount(Mount{Type: "proc", Source: "proc", Target: "/proc", Options: []string{"nosuid", "nodev", "noexec"}}); err != nil {
		return err
	}
	if err := r.mount(Mount{Type: "tmpfs", Source: "tmpfs", Target: "/dev", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}}); err != nil {
		return err
	}
	if err := setupDev(filepath.Join(r.root, "dev"), cfg.ShmSize); err != nil {
		return err
	}
	if !cfg.Insecure {
		if err := r.confineDevices(filepath.Join(r.root, "dev")); err != nil {
			return err
		}
	}
	if err := r.mount(Mount{Type: "sysfs", Source: "sysfs", Target: "/sys", Options: []string{"ro", "nosuid", "nodev", "noexec"}}); err != nil {
		// sysfs of a network namespace we do not own cannot be mounted
		// in some setups: fall back to a read-only bind of the host's.
		if err2 := r.mount(Mount{Type: "bind", Source: "/sys", Target: "/sys", Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}}); err2 != nil {
			return fmt.Errorf("%w (bind fallback: %v)", err, err2)
		}
	}
	for _, f := range []struct{ src, dst string }{
		{cfg.ResolvConf, "/etc/resolv.conf"},
		{cfg.Hosts, "/etc/hosts"},
		{cfg.HostnameFile, "/etc/hostname"},
	} {
		if f.src == "" {
			continue
		}
		if err := r.mount(Mount{Type: "bind", Source: f.src, Target: f.dst, Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}}); err != nil {
			return err
		}
	}
	for _, m := range cfg.Mounts {
		if !cfg.Insecure {
			m.Options = withNodev(m.Options)
		}
		if err := r.mount(m); err != nil {
			return err
		}
	}
	if !cfg.Insecure {
		if err := r.maskPaths(); err != nil {
			return err
		}
	}
	return nil
}

// withNodev returns opts with "nodev" replacing any "dev".
func withNodev(opts []string) []string {
	out := make([]string, 0, len(opts)+1)
	for _, o := range opts {
		if o != "dev" && o != "nodev" {
			out = append(out, o)
		}
	}
	return append(out, "nodev")
}

// pivot makes r.root the root of the mount namespace and detaches the old
// root.
func (r *rootfs) pivot() error {
	if err := unix.Chdir(r.root); err != nil {
		return fmt.Errorf("chdir %s: %w", r.root, err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one;
	// detaching "." then leaves only the new root.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root to %s: %w", r.root, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	r.root = "/"
	return nil
}

// cleanup unmounts what setup mounted (inside the pivoted root) and removes
// the stubs that are still empty, restoring their parents' times. With
// keepMountPoints the stubs of /proc, /dev and /sys stay (see
// keptMountPoints).
func (r *rootfs) cleanup(keepMountPoints bool) error {
	var errs []error
	for i := len(r.mounts) - 1; i >= 0; i-- {
		p := filepath.Join(r.root, r.mounts[i])
		// Peel every mount stacked on p (the command may have mounted
		// over ours).
		for n := 0; n < 16; n++ {
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
				if n == 0 && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
					errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
				}
				break
			}
		}
	}
	for i := len(r.stubs) - 1; i >= 0; i-- {
		s := r.stubs[i]
		if keepMountPoints && keptMountPoints[s.path] {
			continue
		}
		p := filepath.Join(r.root, s.path)
		fi, err := os.Lstat(p)
		if err != nil {
			continue // the command removed it
		}
		if s.isDir {
			if !fi.IsDir() {
				continue
			}
			entries, err := os.ReadDir(p)
			if err != nil || len(entries) > 0 {
				continue // the command wrote into it: keep
			}
		} else if !fi.Mode().IsRegular() || fi.Size() != 0 {
			continue
		}
		parent := filepath.Dir(p)
		before, _ := os.Stat(parent)
		if err := os.Remove(p); err != nil {
			errs = append(errs, fmt.Errorf("removing mount stub %s: %w", s.path, err))
			continue
		}
		if s.top && before != nil {
			at, mt := atime(before), before.ModTime()
			if mt.Equal(s.parentMTimeAfter) && !s.parentMTime.IsZero() {
				// Only the stub touched the parent: undo that.
				at, mt = s.parentATime, s.parentMTime
			}
			if err := os.Chtimes(parent, at, mt); err != nil {
				errs = append(errs, fmt.Errorf("restoring times of %s: %w", parent, err))
			}
		}
	}
	return errors.Join(errs...)
}
