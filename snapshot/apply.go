package snapshot

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/builderdev/builder/internal/fsutil"
	"golang.org/x/sys/unix"
)

// ErrUnsafePath is wrapped by Apply's errors for entries that try to leave
// the snapshot ("..", hard links outside) or have invalid whiteout names.
var ErrUnsafePath = errors.New("unsafe path in layer")

// applyLayer extracts the uncompressed OCI layer tar r into the directory
// root (the merged view of the snapshot). Every path is resolved inside
// root: entries with ".." components are refused, absolute names are taken
// relative to root, symlinks met on the way (absolute or relative) resolve
// inside root, and hard links must point inside root.
func applyLayer(ctx context.Context, root string, r io.Reader) error {
	return applyLayerAs(ctx, root, r, false)
}

// ApplyLayer extracts the uncompressed OCI layer tar r into the plain
// directory dir exactly as Apply does into a snapshot: whiteouts delete what
// they name and every path stays inside dir. A process that is not root
// cannot create other users' files, device nodes or privileged xattrs: then
// files are owned by the caller, and device nodes and non-user xattrs are
// skipped, so an unprivileged user still gets the image's files.
func ApplyLayer(ctx context.Context, dir string, r io.Reader) error {
	return applyLayerAs(ctx, dir, r, os.Geteuid() != 0)
}

func applyLayerAs(ctx context.Context, root string, r io.Reader, unprivileged bool) error {
	root = filepath.Clean(root)
	a := &applier{root: root, unpacked: map[string]bool{}, unprivileged: unprivileged}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading layer: %w", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return err
		}
	}
	// Directory times last, deepest first, since creating children
	// changes them.
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		ts := []unix.Timespec{d.meta.atime, d.meta.mtime}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, d.host, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("setting times of %s: %w", d.name, err)
		}
	}
	return nil
}

type applier struct {
	root string
	// unprivileged skips what only root may create (see ApplyLayer).
	unprivileged bool
	unpacked     map[string]bool // cleaned names created by this layer
	dirs         []appliedDir
}

type appliedDir struct {
	name, host string
	meta       fileMeta
}

// cleanName turns a tar name into a root-relative slash path ("" for the
// root) or refuses it.
func cleanName(n string) (string, error) {
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return "", fmt.Errorf("entry %q: %w: contains ..", n, ErrUnsafePath)
		}
	}
	if strings.ContainsRune(n, 0) {
		return "", fmt.Errorf("entry %q: %w: contains NUL", n, ErrUnsafePath)
	}
	c := strings.TrimPrefix(path.Clean("/"+n), "/")
	return c, nil
}

// inRoot checks that host is root or below it.
func (a *applier) inRoot(host, name string) error {
	rel, err := filepath.Rel(a.root, host)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return fmt.Errorf("entry %q resolves to %s: %w: outside the snapshot", name, host, ErrUnsafePath)
	}
	return nil
}

// resolveParent resolves all but the last component of name inside root.
func (a *applier) resolveParent(name string) (string, error) {
	host, err := fsutil.ResolveParentInRoot(a.root, name)
	if err != nil {
		return "", fmt.Errorf("resolving %q: %w", name, err)
	}
	if err := a.inRoot(host, name); err != nil {
		return "", err
	}
	return host, nil
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" {
		return nil // the root's own entry: the snapshot root keeps its metadata
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")

	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(hdr.Name, dir, base)
	}

	host, err := a.resolveParent(name)
	if err != nil {
		return err
	}
	if err := a.mkdirParents(dir); err != nil {
		return err
	}

	var existing unix.Stat_t
	exists := unix.Lstat(host, &existing) == nil
	isDir := hdr.Typeflag == tar.TypeDir
	if exists && !(isDir && existing.Mode&unix.S_IFMT == unix.S_IFDIR) {
		if err := os.RemoveAll(host); err != nil {
			return fmt.Errorf("replacing %q: %w", name, err)
		}
	}

	meta := fileMeta{
		uid: hdr.Uid, gid: hdr.Gid, mode: uint32(hdr.Mode & 0o7777),
		mtime: unix.NsecToTimespec(hdr.ModTime.UnixNano()),
	}
	meta.atime = meta.mtime
	if !hdr.AccessTime.IsZero() {
		meta.atime = unix.NsecToTimespec(hdr.AccessTime.UnixNano())
	}
	for k, v := range hdr.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if strings.HasPrefix(x, overlayXattrPrefix) {
				continue // never let a layer steer overlayfs
			}
			if meta.xattrs == nil {
				meta.xattrs = map[string]string{}
			}
			meta.xattrs[x] = v
		}
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if !(exists && existing.Mode&unix.S_IFMT == unix.S_IFDIR) {
			if err := os.Mkdir(host, 0o700); err != nil {
				return fmt.Errorf("creating directory %q: %w", name, err)
			}
		}
	case tar.TypeReg, tar.TypeRegA:
		f, err := os.OpenFile(host, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return fmt.Errorf("creating %q: %w", name, err)
		}
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %q: %w", name, err)
		}
	case tar.TypeSymlink:
		meta.symlink = true
		if err := os.Symlink(hdr.Linkname, host); err != nil {
			return fmt.Errorf("creating symlink %q: %w", name, err)
		}
	case tar.TypeLink:
		target, err := a.linkTarget(hdr)
		if err != nil {
			return err
		}
		if err := unix.Linkat(unix.AT_FDCWD, target, unix.AT_FDCWD, host, 0); err != nil {
			return fmt.Errorf("creating hard link %q -> %q: %w", name, hdr.Linkname, err)
		}
		a.unpacked[name] = true
		return nil // a hard link shares its target's metadata
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		if a.unprivileged && hdr.Typeflag != tar.TypeFifo {
			return nil
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(host, mode|0o600, int(dev)); err != nil {
			return fmt.Errorf("creating device %q: %w", name, err)
		}
	default:
		return fmt.Errorf("entry %q: unsupported tar type %q", name, hdr.Typeflag)
	}
	a.unpacked[name] = true
	if a.unprivileged {
		meta = unprivilegedMeta(meta)
	}
	if err := setMeta(host, meta); err != nil {
		return fmt.Errorf("entry %q: %w", name, err)
	}
	if hdr.Typeflag == tar.TypeDir {
		a.dirs = append(a.dirs, appliedDir{name: name, host: host, meta: meta})
	}
	return nil
}

// linkTarget resolves a hard link's target inside root; it must exist and
// not be a directory.
func (a *applier) linkTarget(hdr *tar.Header) (string, error) {
	ln, err := cleanName(hdr.Linkname)
	if err != nil {
		return "", fmt.Errorf("hard link %q: %w", hdr.Name, err)
	}
	if ln == "" {
		return "", fmt.Errorf("hard link %q to the root: %w", hdr.Name, ErrUnsafePath)
	}
	target, err := a.resolveParent(ln)
	if err != nil {
		return "", fmt.Errorf("hard link %q: %w", hdr.Name, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(target, &st); err != nil {
		return "", fmt.Errorf("hard link %q: target %q: %w", hdr.Name, hdr.Linkname, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return "", fmt.Errorf("hard link %q: target %q is a directory", hdr.Name, hdr.Linkname)
	}
	return target, nil
}

// mkdirParents creates missing parent directories of an entry (layers
// need not list them) with mode 0755, resolving inside root.
func (a *applier) mkdirParents(dir string) error {
	if dir == "" {
		return nil
	}
	host, err := fsutil.ResolveInRoot(a.root, dir)
	if err != nil {
		return fmt.Errorf("resolving %q: %w", dir, err)
	}
	if err := a.inRoot(host, dir); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(host, &st); err == nil {
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("parent %q of a layer entry is not a directory", dir)
		}
		return nil
	}
	// host is resolved: its existing part holds no symlinks and the
	// missing part is plain names, so MkdirAll stays under root.
	if err := os.MkdirAll(host, 0o755); err != nil {
		return fmt.Errorf("creating parent %q: %w", dir, err)
	}
	return nil
}

// whiteout applies ".wh.<name>" (delete name from the lower layers) or
// ".wh..wh..opq" (hide everything the lower layers have in dir).
func (a *applier) whiteout(orig, dir, base string) error {
	if base == whiteoutOpaque {
		host, err := fsutil.ResolveInRoot(a.root, dir)
		if err != nil {
			return fmt.Errorf("resolving %q: %w", dir, err)
		}
		if err := a.inRoot(host, dir); err != nil {
			return err
		}
		ents, err := os.ReadDir(host)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("opaque whiteout %q: %w", orig, err)
		}
		for _, e := range ents {
			if a.unpacked[childName(dir, e.Name())] {
				continue
			}
			if err := os.RemoveAll(filepath.Join(host, e.Name())); err != nil {
				return fmt.Errorf("opaque whiteout %q: %w", orig, err)
			}
		}
		return nil
	}
	target := strings.TrimPrefix(base, whiteoutPrefix)
	if strings.HasPrefix(target, whiteoutPrefix) {
		return nil // other aufs metadata (.wh..wh.plnk etc.): not content
	}
	if target == "" || target == "." || target == ".." {
		return fmt.Errorf("whiteout %q: %w: invalid whiteout name", orig, ErrUnsafePath)
	}
	name := childName(dir, target)
	if a.unpacked[name] {
		return nil // whiteouts only hide lower layers
	}
	host, err := a.resolveParent(name)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(host); err != nil {
		return fmt.Errorf("whiteout %q: %w", orig, err)
	}
	return nil
}

// unprivilegedMeta is m as a user who is not root can set it: owned by the
// caller, with only user.* xattrs.
func unprivilegedMeta(m fileMeta) fileMeta {
	m.uid, m.gid = os.Getuid(), os.Getgid()
	var xs map[string]string
	for k, v := range m.xattrs {
		if strings.HasPrefix(k, "user.") {
			if xs == nil {
				xs = map[string]string{}
			}
			xs[k] = v
		}
	}
	m.xattrs = xs
	return m
}
