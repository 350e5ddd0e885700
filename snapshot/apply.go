package snapshot

import (
	"context"
	"io"
	"os"

	"github.com/builderdev/builder/internal/archive"
)

// ErrUnsafePath is wrapped by Apply's errors for entries that try to leave
// the snapshot ("..", hard links outside) or have invalid whiteout names.
var ErrUnsafePath = archive.ErrUnsafePath

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
	opt := archive.Options{
		RejectDotDot:  true,
		Whiteouts:     true,
		ArchiveOwners: !unprivileged,
		Devices:       !unprivileged,
		Fifos:         true,
		Xattrs:        archive.AllXattrs,
		Times:         true,
	}
	if unprivileged {
		opt.Xattrs = archive.UserXattrs
	}
	return archive.Extract(ctx, r, root, opt)
}
