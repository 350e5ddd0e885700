package fsutil

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes data to path with mode perm so that readers see the
// old file or the new one, never a part: see WriteFileAtomicFunc.
func WriteFileAtomic(path string, perm os.FileMode, data []byte) error {
	return WriteFileAtomicFunc(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFileAtomicFunc writes path with what write produces: into a temp file
// beside it (named ".tmp-<name>-*", which readers of the directory skip),
// synced, given mode perm and renamed over path; then the directory is
// synced. When write fails nothing changes and the temp file is removed.
func WriteFileAtomicFunc(path string, perm os.FileMode, write func(io.Writer) error) error {
	return writeAtomic(path, perm, write, true)
}

// ReplaceFile is ReplaceFileFunc writing data.
func ReplaceFile(path string, perm os.FileMode, data []byte) error {
	return ReplaceFileFunc(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// ReplaceFileFunc is WriteFileAtomicFunc without the syncs: readers still
// see the old file or the whole new one and a failure leaves nothing, but
// making it durable is left to the kernel's writeback, as cp, tar and
// docker save leave it. It is for the files a build hands to the user (an
// OCI or docker tarball: syncing 160 MB waits for the disk to write all of
// it) and for the state root's files whose loss in a power cut is only a
// cache miss (result records, snapshot metadata); the ones that must
// survive one (blobs, the image store) keep WriteFileAtomicFunc.
func ReplaceFileFunc(path string, perm os.FileMode, write func(io.Writer) error) error {
	return writeAtomic(path, perm, write, false)
}

func writeAtomic(path string, perm os.FileMode, write func(io.Writer) error, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // a no-op after the rename
	err = write(f)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), perm)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if !durable {
		return nil
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
