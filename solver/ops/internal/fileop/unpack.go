package fileop

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/builderdev/builder/internal/fsutil"
	"golang.org/x/sys/unix"
)

// Compression magic numbers.
var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// decompress returns a reader of the decompressed stream of r, detected by
// magic bytes; uncompressed data is returned as is. xz and zstd use the xz
// and zstd commands, which must be installed.
func decompress(ctx context.Context, r io.Reader) (io.Reader, func() error, error) {
	br := bufio.NewReaderSize(r, 64*1024)
	head, _ := br.Peek(6)
	noop := func() error { return nil }
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, nil // not really gzip: not an archive
		}
		return zr, zr.Close, nil
	case bytes.HasPrefix(head, magicBzip2):
		return bzip2.NewReader(br), noop, nil
	case bytes.HasPrefix(head, magicXz):
		return command(ctx, "xz", br)
	case bytes.HasPrefix(head, magicZstd):
		return command(ctx, "zstd", br)
	}
	return br, noop, nil
}

// command pipes r through "name -dc".
func command(ctx context.Context, name string, r io.Reader) (io.Reader, func() error, error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, nil, fmt.Errorf("%s-compressed archive, but the %s command is not available to decompress it: %w", name, name, err)
	}
	cmd := exec.CommandContext(ctx, bin, "-dc")
	cmd.Stdin = r
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting %s: %w", name, err)
	}
	closer := func() error {
		// Drain so the command can exit, then reap it.
		_, _ = io.Copy(io.Discard, out)
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("%s -dc: %w: %s", name, err, strings.TrimSpace(stderr.String()))
		}
		return nil
	}
	return out, closer, nil
}

// unpackArchive extracts the file at src into the directory dest of the tree
// at root when the file is a (possibly compressed) tar archive. It returns
// false, nil when the file is not an archive. Entries are confined to dest:
// "..", absolute names, symlinks and hard links resolve inside it. Owners
// come from the archive unless owner is set. Whiteouts are not interpreted.
func unpackArchive(ctx context.Context, src, root, dest string, owner *fsutil.Owner) (bool, error) {
	f, err := os.Open(src)
	if err != nil {
		return false, unwrapPath(err)
	}
	defer f.Close()
	r, closeFn, err := decompress(ctx, f)
	if err != nil {
		return false, err
	}
	if r == nil {
		return false, nil
	}
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil {
		_ = closeFn()
		return false, nil
	}
	destHost, err := fsutil.MkdirAllInRoot(root, dest, 0o755, owner)
	if err != nil {
		_ = closeFn()
		return true, fmt.Errorf("creating %s: %w", dest, err)
	}
	x := &extractor{root: destHost, owner: owner, isRoot: os.Geteuid() == 0}
	for {
		if err := ctx.Err(); err != nil {
			_ = closeFn()
			return true, err
		}
		if err := x.entry(hdr, tr); err != nil {
			_ = closeFn()
			return true, fmt.Errorf("extracting %s: %w", hdr.Name, err)
		}
		hdr, err = tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			_ = closeFn()
			return true, fmt.Errorf("reading archive: %w", err)
		}
	}
	if err := closeFn(); err != nil {
		return true, err
	}
	// Directory times last: extracting their entries changed them.
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		if err := fsutil.Lutimes(d.path, d.atime, d.mtime); err != nil {
			return true, err
		}
	}
	return true, nil
}

type dirTimes struct {
	path         string
	atime, mtime time.Time
}

type extractor struct {
	root   string
	owner  *fsutil.Owner
	isRoot bool
	dirs   []dirTimes
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	name := path.Clean("/" + filepath.ToSlash(hdr.Name))
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return nil
	}
	if name == "/" {
		return nil
	}
	// Parents are created when missing (as docker does), resolved inside
	// the extraction root.
	if _, err := fsutil.MkdirAllInRoot(x.root, path.Dir(name), 0o755, x.owner); err != nil {
		return err
	}
	p, err := fsutil.ResolveParentInRoot(x.root, name)
	if err != nil {
		return err
	}
	if fi, err := os.Lstat(p); err == nil {
		if !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := os.Symlink(hdr.Linkname, p); err != nil {
			return err
		}
	case tar.TypeLink:
		target, err := fsutil.ResolveParentInRoot(x.root, hdr.Linkname)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(target)
		if err != nil {
			return fmt.Errorf("hard link target %s: %w", hdr.Linkname, unwrapPath(err))
		}
		if fi.IsDir() {
			return fmt.Errorf("hard link target %s is a directory", hdr.Linkname)
		}
		if err := os.Link(target, p); err != nil {
			return unwrapPath(err)
		}
		return nil // the metadata is the target's
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		t := uint32(unix.S_IFIFO)
		if hdr.Typeflag == tar.TypeChar {
			t = unix.S_IFCHR
		} else if hdr.Typeflag == tar.TypeBlock {
			t = unix.S_IFBLK
		}
		if err := unix.Mknod(p, t|mode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	uid, gid := hdr.Uid, hdr.Gid
	if x.owner != nil {
		uid, gid = x.owner.UID, x.owner.GID
	}
	if x.isRoot || x.owner != nil {
		if err := os.Lchown(p, uid, gid); err != nil {
			return unwrapPath(err)
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := os.Chmod(p, fsutil.GoMode(mode)); err != nil {
			return unwrapPath(err)
		}
	}
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			_ = unix.Lsetxattr(p, name, []byte(v), 0)
		}
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	if hdr.Typeflag == tar.TypeDir {
		x.dirs = append(x.dirs, dirTimes{p, atime, hdr.ModTime})
		return nil
	}
	return fsutil.Lutimes(p, atime, hdr.ModTime)
}

// Decompress returns a reader of the decompressed stream of r (gzip,
// bzip2, xz or zstd, detected by magic bytes; anything else as is) and
// the function that closes it. A stream that only looks compressed gives
// a nil reader.
func Decompress(ctx context.Context, r io.Reader) (io.Reader, func() error, error) {
	return decompress(ctx, r)
}
