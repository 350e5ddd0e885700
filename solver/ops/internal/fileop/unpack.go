package fileop

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/builderdev/builder/internal/archive"
	"github.com/builderdev/builder/internal/fsutil"
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
	x := archive.NewExtractor(destHost, archive.Options{
		Owner:             owner,
		ArchiveOwners:     os.Geteuid() == 0,
		Devices:           true,
		Fifos:             true,
		Xattrs:            archive.AllXattrs,
		IgnoreXattrErrors: true,
		Times:             true,
	})
	for {
		if err := ctx.Err(); err != nil {
			_ = closeFn()
			return true, err
		}
		if err := x.Entry(hdr, tr); err != nil {
			_ = closeFn()
			return true, fmt.Errorf("unpacking archive: %w", err)
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
	return true, x.Finish()
}

// Decompress returns a reader of the decompressed stream of r (gzip,
// bzip2, xz or zstd, detected by magic bytes; anything else as is) and
// the function that closes it. A stream that only looks compressed gives
// a nil reader.
func Decompress(ctx context.Context, r io.Reader) (io.Reader, func() error, error) {
	return decompress(ctx, r)
}
