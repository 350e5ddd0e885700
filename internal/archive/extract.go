package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/builderdev/builder/internal/fsutil"
	"golang.org/x/sys/unix"
)

// ErrUnsafePath is wrapped by the errors for entries that try to leave the
// destination (".." with RejectDotDot, hard links to the root) or have
// invalid names.
var ErrUnsafePath = errors.New("unsafe path in archive")

// ErrTooLarge is wrapped when the archive has more entries or bytes than
// Options allow.
var ErrTooLarge = errors.New("archive too large")

// OCI whiteouts (image-spec layer.md).
const (
	WhiteoutPrefix = ".wh."
	WhiteoutOpaque = ".wh..wh..opq"
	// overlayXattrPrefix marks overlayfs-private xattrs: an archive never
	// sets them.
	overlayXattrPrefix = "trusted.overlay."
)

// Options say what Extract restores besides names and contents.
type Options struct {
	// RejectDotDot refuses names with a ".." component (ErrUnsafePath);
	// otherwise they are cleaned, and stay inside the destination.
	RejectDotDot bool
	// Whiteouts applies OCI whiteouts: ".wh.NAME" deletes NAME and
	// ".wh..wh..opq" empties its directory of what this archive did not
	// create. Otherwise they are extracted as the files they are.
	Whiteouts bool

	// Owner, when set, owns every entry and every parent Extract creates.
	Owner *fsutil.Owner
	// ArchiveOwners gives entries the uid and gid of the archive (when
	// Owner is nil); an error if they cannot be set. Otherwise the caller
	// owns them.
	ArchiveOwners bool
	// ModeMask is applied to the archive's permission bits (0 is 07777:
	// setuid, setgid and sticky kept).
	ModeMask uint32

	// Devices creates character and block devices (an error if that
	// fails); otherwise they are skipped. Fifos likewise.
	Devices, Fifos bool
	// Xattrs decides which SCHILY.xattr records are set (nil: none).
	// trusted.overlay.* is never set.
	Xattrs func(name string) bool
	// IgnoreXattrErrors skips xattrs the filesystem refuses.
	IgnoreXattrErrors bool
	// Times restores access and modification times.
	Times bool
	// RegularHardLinks allows hard links only to regular files; otherwise
	// to anything but a directory.
	RegularHardLinks bool

	// MaxEntries and MaxBytes bound the number of entries and the bytes of
	// file contents (0: no bound).
	MaxEntries int
	MaxBytes   int64
}

// AllXattrs sets every xattr (but overlayfs's).
func AllXattrs(string) bool { return true }

// UserXattrs sets the user.* xattrs, the ones any user may set.
func UserXattrs(name string) bool { return strings.HasPrefix(name, "user.") }

// Extract extracts the tar stream r into the existing directory dir.
func Extract(ctx context.Context, r io.Reader, dir string, opt Options) error {
	x := newExtractor(dir, opt)
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
			return fmt.Errorf("reading the archive: %w", err)
		}
		if err := x.Entry(hdr, tr); err != nil {
			return err
		}
	}
	return x.Finish()
}

// Extractor extracts entries one by one, for callers that read the first
// header themselves (to tell an archive from another file).
type Extractor struct {
	root     string
	opt      Options
	unpacked map[string]bool // cleaned names created by this archive
	dirs     []extractedDir
	entries  int
	bytes    int64
}

type extractedDir struct {
	name, host   string
	atime, mtime unix.Timespec
}

// NewExtractor returns an extractor into the existing directory dir.
func NewExtractor(dir string, opt Options) *Extractor { return newExtractor(dir, opt) }

func newExtractor(dir string, opt Options) *Extractor {
	if opt.ModeMask == 0 {
		opt.ModeMask = 0o7777
	}
	return &Extractor{root: filepath.Clean(dir), opt: opt, unpacked: map[string]bool{}}
}

// Finish sets the times of the extracted directories, deepest first (their
// entries changed them). Call it once after the last Entry.
func (x *Extractor) Finish() error {
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		ts := []unix.Timespec{d.atime, d.mtime}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, d.host, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("setting times of %s: %w", d.name, plain(err))
		}
	}
	x.dirs = nil
	return nil
}

// cleanName turns a tar name into a root-relative slash path ("" for the
// root) or refuses it.
func (x *Extractor) cleanName(n string) (string, error) {
	if x.opt.RejectDotDot {
		for _, c := range strings.Split(n, "/") {
			if c == ".." {
				return "", fmt.Errorf("entry %q: %w: contains ..", n, ErrUnsafePath)
			}
		}
	}
	if strings.ContainsRune(n, 0) {
		return "", fmt.Errorf("entry %q: %w: contains NUL", n, ErrUnsafePath)
	}
	return strings.TrimPrefix(path.Clean("/"+n), "/"), nil
}

// inRoot checks that host is the root or below it.
func (x *Extractor) inRoot(host, name string) error {
	rel, err := filepath.Rel(x.root, host)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return fmt.Errorf("entry %q: %w: outside the destination", name, ErrUnsafePath)
	}
	return nil
}

// resolveParent resolves all but the last component of name inside root.
func (x *Extractor) resolveParent(name string) (string, error) {
	host, err := fsutil.ResolveParentInRoot(x.root, name)
	if err != nil {
		return "", fmt.Errorf("resolving %q: %w", name, plain(err))
	}
	if err := x.inRoot(host, name); err != nil {
		return "", err
	}
	return host, nil
}

// count enforces MaxEntries.
func (x *Extractor) count() error {
	x.entries++
	if x.opt.MaxEntries > 0 && x.entries > x.opt.MaxEntries {
		return fmt.Errorf("%w: more than %d entries", ErrTooLarge, x.opt.MaxEntries)
	}
	return nil
}

// Entry extracts one entry, its contents read from r.
func (x *Extractor) Entry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if err := x.count(); err != nil {
		return err
	}
	name, err := x.cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" {
		return nil // the root's own entry: the destination keeps its metadata
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if x.opt.Whiteouts && strings.HasPrefix(base, WhiteoutPrefix) {
		return x.whiteout(hdr.Name, dir, base)
	}
	if skip := x.skipped(hdr.Typeflag); skip {
		return nil
	}
	if dir != "" {
		if _, err := fsutil.MkdirAllInRoot(x.root, dir, 0o755, x.opt.Owner); err != nil {
			return fmt.Errorf("entry %q: creating its parent: %w", hdr.Name, plain(err))
		}
	}
	host, err := x.resolveParent(name)
	if err != nil {
		return err
	}
	var existing unix.Stat_t
	exists := unix.Lstat(host, &existing) == nil
	keepDir := exists && hdr.Typeflag == tar.TypeDir && existing.Mode&unix.S_IFMT == unix.S_IFDIR
	if exists && !keepDir {
		if err := os.RemoveAll(host); err != nil {
			return fmt.Errorf("entry %q: replacing what is there: %w", hdr.Name, plain(err))
		}
	}
	done, err := x.create(hdr, r, name, host, keepDir)
	if err != nil || done {
		return err
	}
	x.unpacked[name] = true
	if err := x.setMeta(hdr, host); err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	if hdr.Typeflag == tar.TypeDir && x.opt.Times {
		at, mt := times(hdr)
		x.dirs = append(x.dirs, extractedDir{name: name, host: host, atime: at, mtime: mt})
	}
	return nil
}

// skipped reports the device nodes and fifos Options leave out.
func (x *Extractor) skipped(t byte) bool {
	switch t {
	case tar.TypeChar, tar.TypeBlock:
		return !x.opt.Devices
	case tar.TypeFifo:
		return !x.opt.Fifos
	}
	return false
}

// create makes the entry at host. done is true for a hard link, which
// shares its target's metadata.
func (x *Extractor) create(hdr *tar.Header, r io.Reader, name, host string, keepDir bool) (done bool, err error) {
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !keepDir {
			if err := os.Mkdir(host, 0o700); err != nil {
				return false, fmt.Errorf("entry %q: creating the directory: %w", hdr.Name, plain(err))
			}
		}
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont:
		if err := x.writeFile(hdr, r, host); err != nil {
			return false, err
		}
	case tar.TypeSymlink:
		if err := os.Symlink(hdr.Linkname, host); err != nil {
			return false, fmt.Errorf("entry %q: creating the symlink: %w", hdr.Name, plain(err))
		}
	case tar.TypeLink:
		target, err := x.linkTarget(hdr)
		if err != nil {
			return false, err
		}
		if err := unix.Linkat(unix.AT_FDCWD, target, unix.AT_FDCWD, host, 0); err != nil {
			return false, fmt.Errorf("entry %q: hard link to %q: %w", hdr.Name, hdr.Linkname, plain(err))
		}
		x.unpacked[name] = true
		return true, nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(host, mode|0o600, int(dev)); err != nil {
			return false, fmt.Errorf("entry %q: creating the device: %w", hdr.Name, plain(err))
		}
	default:
		return false, fmt.Errorf("entry %q: unsupported tar entry type %q", hdr.Name, hdr.Typeflag)
	}
	return false, nil
}

// writeFile writes a regular file's contents, within MaxBytes.
func (x *Extractor) writeFile(hdr *tar.Header, r io.Reader, host string) error {
	f, err := os.OpenFile(host, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("entry %q: creating the file: %w", hdr.Name, plain(err))
	}
	if x.opt.MaxBytes > 0 {
		r = io.LimitReader(r, x.opt.MaxBytes-x.bytes+1)
	}
	n, err := io.Copy(f, r)
	x.bytes += n
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("entry %q: writing: %w", hdr.Name, plain(err))
	}
	if x.opt.MaxBytes > 0 && x.bytes > x.opt.MaxBytes {
		return fmt.Errorf("entry %q: %w: more than %d bytes", hdr.Name, ErrTooLarge, x.opt.MaxBytes)
	}
	return nil
}

// linkTarget resolves a hard link's target inside root: an earlier entry,
// not a directory (and a regular file with RegularHardLinks).
func (x *Extractor) linkTarget(hdr *tar.Header) (string, error) {
	fail := func(why string, args ...any) error {
		return fmt.Errorf("entry %q: hard link target %s: %s", hdr.Name, hdr.Linkname, fmt.Sprintf(why, args...))
	}
	ln, err := x.cleanName(hdr.Linkname)
	if err != nil {
		return "", fmt.Errorf("entry %q: hard link: %w", hdr.Name, err)
	}
	if ln == "" {
		return "", fmt.Errorf("entry %q: hard link to the root: %w", hdr.Name, ErrUnsafePath)
	}
	target, err := x.resolveParent(ln)
	if err != nil {
		return "", fmt.Errorf("entry %q: hard link: %w", hdr.Name, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(target, &st); err != nil {
		return "", fail("not an earlier regular file of the archive (%v)", plain(err))
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return "", fail("is a directory")
	case x.opt.RegularHardLinks && st.Mode&unix.S_IFMT != unix.S_IFREG:
		return "", fail("not an earlier regular file of the archive")
	}
	return target, nil
}

func times(hdr *tar.Header) (atime, mtime unix.Timespec) {
	mtime = unix.NsecToTimespec(hdr.ModTime.UnixNano())
	atime = mtime
	if !hdr.AccessTime.IsZero() {
		atime = unix.NsecToTimespec(hdr.AccessTime.UnixNano())
	}
	return atime, mtime
}

// setMeta gives host the entry's owner, mode, xattrs and times. Order
// matters: chown clears setuid bits and security.capability, so it comes
// first; times come last.
func (x *Extractor) setMeta(hdr *tar.Header, host string) error {
	symlink := hdr.Typeflag == tar.TypeSymlink
	switch {
	case x.opt.Owner != nil:
		if err := unix.Lchown(host, x.opt.Owner.UID, x.opt.Owner.GID); err != nil {
			return fmt.Errorf("chown: %w", plain(err))
		}
	case x.opt.ArchiveOwners:
		if err := unix.Lchown(host, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown: %w", plain(err))
		}
	}
	if !symlink {
		if err := unix.Chmod(host, uint32(hdr.Mode)&0o7777&x.opt.ModeMask); err != nil {
			return fmt.Errorf("chmod: %w", plain(err))
		}
	}
	if x.opt.Xattrs != nil {
		if err := x.setXattrs(hdr, host); err != nil {
			return err
		}
	}
	if x.opt.Times && hdr.Typeflag != tar.TypeDir {
		at, mt := times(hdr)
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, host, []unix.Timespec{at, mt}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("setting times: %w", plain(err))
		}
	}
	return nil
}

func (x *Extractor) setXattrs(hdr *tar.Header, host string) error {
	var names []string
	for k := range hdr.PAXRecords {
		if n, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && !strings.HasPrefix(n, overlayXattrPrefix) && x.opt.Xattrs(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		err := unix.Lsetxattr(host, n, []byte(hdr.PAXRecords["SCHILY.xattr."+n]), 0)
		if err != nil && !x.opt.IgnoreXattrErrors {
			return fmt.Errorf("setting xattr %s: %w", n, plain(err))
		}
	}
	return nil
}

// whiteout applies ".wh.<name>" (delete name from what was there) or
// ".wh..wh..opq" (hide everything that was there in dir).
func (x *Extractor) whiteout(orig, dir, base string) error {
	if base == WhiteoutOpaque {
		host, err := fsutil.ResolveInRoot(x.root, dir)
		if err != nil {
			return fmt.Errorf("resolving %q: %w", dir, plain(err))
		}
		if err := x.inRoot(host, dir); err != nil {
			return err
		}
		ents, err := os.ReadDir(host)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("opaque whiteout %q: %w", orig, plain(err))
		}
		for _, e := range ents {
			if x.unpacked[childName(dir, e.Name())] {
				continue
			}
			if err := os.RemoveAll(filepath.Join(host, e.Name())); err != nil {
				return fmt.Errorf("opaque whiteout %q: %w", orig, plain(err))
			}
		}
		return nil
	}
	target := strings.TrimPrefix(base, WhiteoutPrefix)
	if strings.HasPrefix(target, WhiteoutPrefix) {
		return nil // other aufs metadata (.wh..wh.plnk etc.): not content
	}
	if target == "" || target == "." || target == ".." {
		return fmt.Errorf("whiteout %q: %w: invalid whiteout name", orig, ErrUnsafePath)
	}
	name := childName(dir, target)
	if x.unpacked[name] {
		return nil // whiteouts only hide what was there before
	}
	host, err := x.resolveParent(name)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(host); err != nil {
		return fmt.Errorf("whiteout %q: %w", orig, plain(err))
	}
	return nil
}

func childName(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// plain drops the host path from an *os.PathError or *os.LinkError: the
// destination is often a temporary directory the user never named, and the
// entry's name is in the message already.
func plain(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return fmt.Errorf("%s: %w", le.Op, le.Err)
	}
	return err
}
