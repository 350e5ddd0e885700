package exporter

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/builderdev/builder/snapshot"
	"golang.org/x/sys/unix"
)

// ErrUnsafeEntry is wrapped by the rootfs exporters' errors for layer
// entries that try to leave the destination; the extraction is snapshot's.
var ErrUnsafeEntry = snapshot.ErrUnsafePath

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
		err = snapshot.ApplyLayer(ctx, root, rc)
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
