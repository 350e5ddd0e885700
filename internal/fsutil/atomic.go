package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
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
// beside it (named ".tmp-<name>-<digits>", which readers of the directory
// skip), synced, given mode perm and renamed over path; then the directory
// is synced. When write fails nothing changes and the temp file is removed.
// The writer holds an exclusive flock on its temp file from its creation
// until it is renamed or removed, so a temp file nobody holds is one whose
// writer was killed (see WriteOutputFunc).
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
// docker save leave it. It is for the files a build hands to the user
// (through WriteOutputFunc: an OCI or docker tarball, syncing 160 MB waits
// for the disk to write all of it) and for the state root's files whose
// loss in a power cut is only a cache miss (result records, snapshot
// metadata); the ones that must survive one (blobs, the image store) keep
// WriteFileAtomicFunc.
func ReplaceFileFunc(path string, perm os.FileMode, write func(io.Writer) error) error {
	return writeAtomic(path, perm, write, false)
}

// WriteOutputFunc writes a file a build hands to the user (an image
// tarball, an --iidfile, a --metadata-file, a report) with ReplaceFileFunc,
// world-readable, making its directory when missing. First it removes the
// temp files that earlier writers of path left beside it when they were
// killed mid-write: a tarball's can be hundreds of megabytes, in the user's
// directory, and nothing else would ever remove it. It never removes the
// temp file of a writer that is still running, in this process or another.
// The state root's files do without the sweep: their temps are small (the
// record store sweeps its own at open: cache.OpenMetaStore), and a
// directory listing on every record written would cost too much there.
//
// A path that exists is written through, as buildx writes its outputs: a
// symlink's target gets the content (the link stays), and a device, FIFO
// or socket is written in place (dest=/dev/null discards the output, it
// does not replace the device with a file).
func WriteOutputFunc(path string, write func(io.Writer) error) error {
	path = followLinks(path)
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
		return writeInPlace(path, write)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	removeDeadTemps(path)
	return ReplaceFileFunc(path, 0o644, write)
}

// followLinks returns where path leads when it is a symlink, as open(2)
// follows it, also to a target that does not exist yet (which the write
// then makes); path itself when it is not a link or the chain is too long.
func followLinks(path string) string {
	p := path
	for range 40 {
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			return p
		}
		target, err := os.Readlink(p)
		if err != nil {
			return path
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		p = target
	}
	return path
}

// writeInPlace writes what write produces to the special file at path.
func writeInPlace(path string, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// tmpPrefix starts the names of writeAtomic's temp files.
const tmpPrefix = ".tmp-"

func writeAtomic(path string, perm os.FileMode, write func(io.Writer) error, durable bool) error {
	dir := filepath.Dir(path)
	f, unlock, err := createLockedTemp(path)
	if err != nil {
		// The temp's name means nothing to the user: the error's does.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer unlock()            // last: the temp is locked until renamed or removed
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
		if fi, serr := os.Stat(path); err != nil && serr == nil && fi.IsDir() {
			err = syscall.EISDIR
		}
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, &tempError{err: err, temp: f.Name(), path: path})
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

// createLockedTemp creates the temp file for path, as os.CreateTemp names
// it (".tmp-<name>-<digits>"), and takes an exclusive flock on it, held
// until unlock: the lock is on a duplicate of f's descriptor, so closing f
// (and seeing its error) before the rename keeps it.
func createLockedTemp(path string) (*os.File, func(), error) {
	for range 5 {
		f, err := os.CreateTemp(filepath.Dir(path), tmpPrefix+filepath.Base(path)+"-")
		if err != nil {
			return nil, nil, err
		}
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, nil, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
		lk := os.NewFile(uintptr(fd), f.Name())
		if err := flock(lk, unix.LOCK_EX); err != nil {
			lk.Close()
			f.Close()
			os.Remove(f.Name())
			return nil, nil, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
		// Between the create and the lock the file was not locked: a
		// sweep in another writer may have taken it for a dead one's and
		// removed it. Then make another.
		held, err1 := lk.Stat()
		named, err2 := os.Lstat(f.Name())
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			return f, func() { lk.Close() }, nil
		}
		lk.Close()
		f.Close()
	}
	return nil, nil, errors.New("temp file removed by other writers, five times")
}

// removeDeadTemps removes the temp files beside path whose writers are
// dead: see RemoveDeadTemps.
func removeDeadTemps(path string) {
	removeDeadTempsOf(filepath.Dir(path), filepath.Base(path))
}

// RemoveDeadTemps removes from dir the temp files of every name there
// whose writers are dead, as WriteOutputFunc does for one name: for an
// output that is a directory of files (an OCI layout), where a killed
// export leaves temps under names the next export may never write again.
func RemoveDeadTemps(dir string) {
	removeDeadTempsOf(dir, "")
}

// removeDeadTempsOf removes the entries of dir named exactly as
// createLockedTemp names them for base (for any name when base is "")
// that are regular files (never following a link) and that nobody holds
// locked. It reads the directory once and removes only what it proves
// dead; errors leave things as they are.
func removeDeadTempsOf(dir, base string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	defer d.Close()
	ents, err := d.ReadDir(-1)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), tmpPrefix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		name, suffix, ok := cutLast(rest, "-")
		if ok && name != "" && (base == "" || name == base) && isTempSuffix(suffix) {
			removeIfDead(int(d.Fd()), e.Name())
		}
	}
}

// cutLast slices s around the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// isTempSuffix reports whether s is a random part os.CreateTemp makes: a
// uint32 in decimal, without leading zeros.
func isTempSuffix(s string) bool {
	n, err := strconv.ParseUint(s, 10, 32)
	return err == nil && strconv.FormatUint(n, 10) == s
}

// removeIfDead removes the regular file name in directory dirfd if nobody
// holds a lock on it. It removes it while holding the lock itself, and
// only if name still names the file it locked: its writer may have renamed
// it over the output (or removed it) in the meantime.
func removeIfDead(dirfd int, name string) {
	// O_NONBLOCK: a FIFO swapped in after the listing must not hang open.
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var held, named unix.Stat_t
	if unix.Fstat(fd, &held) != nil || held.Mode&unix.S_IFMT != unix.S_IFREG {
		return
	}
	if flock(f, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return // a live writer's, or not ours to judge
	}
	if unix.Fstatat(dirfd, name, &named, unix.AT_SYMLINK_NOFOLLOW) != nil || named.Dev != held.Dev || named.Ino != held.Ino {
		return
	}
	unix.Unlinkat(dirfd, name, 0)
}

// tempError is an error of a temp file told with the name of the file
// it stands for: the user never sees the temp's name.
type tempError struct {
	err        error
	temp, path string
}

func (e *tempError) Error() string {
	var le *os.LinkError
	if errors.As(e.err, &le) && le.Old == e.temp {
		return le.Err.Error() // the rename's: "is a directory"
	}
	return strings.ReplaceAll(e.err.Error(), e.temp, e.path)
}

func (e *tempError) Unwrap() error { return e.err }

// CheckOutputFile tells before a build what would keep WriteOutputFunc
// from writing path at its end: path is a directory, or what should be a
// directory above it is not.
func CheckOutputFile(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	return checkOutputParents(path)
}

// CheckOutputDir is CheckOutputFile for an output that is a directory.
func CheckOutputDir(path string) error {
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", path)
	}
	return checkOutputParents(path)
}

// checkOutputParents checks that the nearest existing path above path is
// a directory (WriteOutputFunc makes the missing ones).
func checkOutputParents(path string) error {
	for d := filepath.Dir(filepath.Clean(path)); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s: %s is not a directory", path, d)
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) || d == filepath.Dir(d) {
			return nil // the write will tell
		}
	}
}
