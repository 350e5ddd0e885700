package exporter

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/builderdev/builder/snapshot/fsutil"
	"golang.org/x/sys/unix"
)

// OCI whiteout names.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// ErrUnsafeEntry is wrapped by the rootfs exporters' errors for layer
// entries that try to leave the destination.
var ErrUnsafeEntry = errors.New("unsafe layer entry")

// WriteLocal writes the image's root filesystem as files under dir (type=local):
// the layers are extracted in order, applying whiteouts, every path resolved
// inside dir, so neither "..", nor symlinks nor hard links in a layer can
// reach outside it. Owners are kept when running as root; modes, times and
// symlinks always; device nodes only as root (they are skipped otherwise).
func WriteLocal(ctx context.Context, dir string, img *Image) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("local output %s: %w", dir, err)
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for i, l := range img.Layers {
		rc, err := img.Blobs.V1Layer(l).Uncompressed()
		if err != nil {
			return fmt.Errorf("layer %d (%s): %w", i, l.Digest, err)
		}
		err = extractLayer(ctx, root, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("extracting layer %d (%s) into %s: %w", i, l.Digest, dir, err)
		}
	}
	return nil
}

// WriteRootfsTar writes the image's root filesystem as one tar stream to w
// (type=tar): the tree WriteLocal makes, extracted into a temporary
// directory under scratch (removed afterwards), then archived in sorted
// order with owners, modes, times, symlinks, hard links and devices.
func WriteRootfsTar(ctx context.Context, w io.Writer, img *Image, scratch string) error {
	tmp, err := os.MkdirTemp(scratch, ".rootfs-")
	if err != nil {
		return fmt.Errorf("tar output: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := WriteLocal(ctx, tmp, img); err != nil {
		return err
	}
	return TarDir(ctx, w, tmp)
}

// TarDir writes the tree under dir as a tar stream (names relative to dir,
// directories with a trailing slash), in lexical order.
func TarDir(ctx context.Context, w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		name := filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		target := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		hdr.Name = name
		hdr.Format = tar.FormatPAX
		hdr.Uname, hdr.Gname = "", ""
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			hdr.Mode = int64(st.Mode & 0o7777)
			if fi.Mode().IsRegular() && st.Nlink > 1 {
				key := [2]uint64{uint64(st.Dev), st.Ino}
				if first, seen := links[key]; seen {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					links[key] = name
				}
			}
			if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
				hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
			}
		}
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("archiving %s: %w", dir, err)
	}
	return tw.Close()
}

// extractLayer applies one uncompressed layer tar to root.
func extractLayer(ctx context.Context, root string, r io.Reader) error {
	x := &extractor{root: root, created: map[string]bool{}, asRoot: os.Geteuid() == 0}
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
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	// Directory times last, deepest first: creating children changes them.
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		if err := os.Chtimes(d.host, d.mtime, d.mtime); err != nil {
			return fmt.Errorf("setting times of %s: %w", d.name, err)
		}
	}
	return nil
}

type extractedDir struct {
	name, host string
	mtime      time.Time
}

type extractor struct {
	root    string
	asRoot  bool
	created map[string]bool // names this layer made (kept by opaque whiteouts)
	dirs    []extractedDir
}

// clean turns an entry name into a clean relative name; "" is the root.
func clean(n string) (string, error) {
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return "", fmt.Errorf("entry %q: %w", n, ErrUnsafeEntry)
		}
	}
	return strings.TrimPrefix(path.Clean("/"+n), "/"), nil
}

// host resolves name inside root, its last component unresolved, and
// checks the result is under root.
func (x *extractor) host(name string) (string, error) {
	p, err := fsutil.ResolveParentInRoot(x.root, name)
	if err != nil {
		return "", fmt.Errorf("resolving %q: %w", name, err)
	}
	if p != x.root && !strings.HasPrefix(p, x.root+string(filepath.Separator)) {
		return "", fmt.Errorf("entry %q resolves outside the destination: %w", name, ErrUnsafeEntry)
	}
	return p, nil
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := clean(hdr.Name)
	if err != nil || name == "" {
		return err
	}
	dir, base := path.Split(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return x.whiteout(strings.TrimSuffix(dir, "/"), base)
	}
	if dir != "" {
		if _, err := fsutil.MkdirAllInRoot(x.root, dir, 0o755, nil); err != nil {
			return fmt.Errorf("creating parent of %q: %w", name, err)
		}
	}
	host, err := x.host(name)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	exists := unix.Lstat(host, &st) == nil
	isDir := hdr.Typeflag == tar.TypeDir
	if exists && !(isDir && st.Mode&unix.S_IFMT == unix.S_IFDIR) {
		if err := os.RemoveAll(host); err != nil {
			return fmt.Errorf("replacing %q: %w", name, err)
		}
	}
	x.created[name] = true
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !(exists && st.Mode&unix.S_IFMT == unix.S_IFDIR) {
			if err := os.Mkdir(host, 0o700); err != nil {
				return fmt.Errorf("creating directory %q: %w", name, err)
			}
		}
		x.dirs = append(x.dirs, extractedDir{name: name, host: host, mtime: hdr.ModTime})
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
		if err := os.Symlink(hdr.Linkname, host); err != nil {
			return fmt.Errorf("creating symlink %q: %w", name, err)
		}
	case tar.TypeLink:
		ln, err := clean(hdr.Linkname)
		if err != nil || ln == "" {
			return fmt.Errorf("hard link %q -> %q: %w", name, hdr.Linkname, ErrUnsafeEntry)
		}
		target, err := x.host(ln)
		if err != nil {
			return err
		}
		if err := unix.Linkat(unix.AT_FDCWD, target, unix.AT_FDCWD, host, 0); err != nil {
			return fmt.Errorf("creating hard link %q -> %q: %w", name, hdr.Linkname, err)
		}
		return nil // a hard link shares its target's metadata
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		if mode != unix.S_IFIFO && !x.asRoot {
			delete(x.created, name)
			return nil // device nodes need root
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(host, mode|0o600, int(dev)); err != nil {
			return fmt.Errorf("creating device %q: %w", name, err)
		}
	default:
		return fmt.Errorf("entry %q: unsupported tar type %q", name, hdr.Typeflag)
	}
	symlink := hdr.Typeflag == tar.TypeSymlink
	if x.asRoot {
		if err := os.Lchown(host, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown %q: %w", name, err)
		}
	}
	if !symlink {
		if err := unix.Fchmodat(unix.AT_FDCWD, host, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("chmod %q: %w", name, err)
		}
	}
	if hdr.Typeflag != tar.TypeDir {
		ts := []unix.Timespec{unix.NsecToTimespec(hdr.ModTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, host, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("setting times of %q: %w", name, err)
		}
	}
	return nil
}

// whiteout applies ".wh.<name>" (delete name) or ".wh..wh..opq" (hide
// what the lower layers have in dir) to the tree.
func (x *extractor) whiteout(dir, base string) error {
	if base == whiteoutOpaque {
		host, err := fsutil.ResolveInRoot(x.root, dir)
		if err != nil {
			return fmt.Errorf("resolving %q: %w", dir, err)
		}
		if host != x.root && !strings.HasPrefix(host, x.root+string(filepath.Separator)) {
			return fmt.Errorf("opaque whiteout in %q: %w", dir, ErrUnsafeEntry)
		}
		ents, err := os.ReadDir(host)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("opaque whiteout in %q: %w", dir, err)
		}
		for _, e := range ents {
			if x.created[path.Join(dir, e.Name())] {
				continue
			}
			if err := os.RemoveAll(filepath.Join(host, e.Name())); err != nil {
				return fmt.Errorf("opaque whiteout in %q: %w", dir, err)
			}
		}
		return nil
	}
	target := strings.TrimPrefix(base, whiteoutPrefix)
	if target == "" || target == "." || target == ".." || strings.HasPrefix(target, whiteoutPrefix) {
		return fmt.Errorf("whiteout %q in %q: %w", base, dir, ErrUnsafeEntry)
	}
	host, err := x.host(path.Join(dir, target))
	if err != nil {
		return err
	}
	if err := os.RemoveAll(host); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("whiteout %q: %w", path.Join(dir, target), err)
	}
	return nil
}
