package snapshot

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/builderdev/builder/internal/fsutil"
)

// OCI whiteout names.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	// overlayXattrPrefix marks overlayfs-private xattrs: never copied into
	// layers, never applied from them.
	overlayXattrPrefix = "trusted.overlay."
)

type devIno struct{ dev, ino uint64 }

// layerWriter writes a deterministic layer tar. Entries are written in
// depth-first order with each directory's entries sorted by name, so parents
// come before children. Directory entries can be deferred (push) and are
// only written when something inside them is.
type layerWriter struct {
	tw      *tar.Writer
	links   map[devIno]string // first name of inodes with several links
	pending []pendingDir
	flushed int
	buf     []byte // file data chunk
}

type pendingDir struct{ host, name string }

func newLayerWriter(w io.Writer) *layerWriter {
	return &layerWriter{tw: tar.NewWriter(w), links: map[devIno]string{}}
}

// push defers the entry of directory host (named name in the layer) until
// something below it is written, or writes it now if force.
func (lw *layerWriter) push(host, name string, force bool) error {
	lw.pending = append(lw.pending, pendingDir{host, name})
	if force {
		return lw.flush()
	}
	return nil
}

// pop leaves the innermost pushed directory.
func (lw *layerWriter) pop() {
	lw.pending = lw.pending[:len(lw.pending)-1]
	if lw.flushed > len(lw.pending) {
		lw.flushed = len(lw.pending)
	}
}

func (lw *layerWriter) flush() error {
	for ; lw.flushed < len(lw.pending); lw.flushed++ {
		d := lw.pending[lw.flushed]
		if err := lw.writeFile(d.host, d.name); err != nil {
			return err
		}
	}
	return nil
}

// addFileStat writes the entry for host path host, whose lstat is st, as
// name (flushing pending parents first).
func (lw *layerWriter) addFileStat(host, name string, st *unix.Stat_t) error {
	if err := lw.flush(); err != nil {
		return err
	}
	return lw.writeStat(host, name, st)
}

// addWhiteout writes an empty marker file: a whiteout or the opaque marker.
func (lw *layerWriter) addWhiteout(name string) error {
	if err := lw.flush(); err != nil {
		return err
	}
	return lw.tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     0,
		ModTime:  time.Unix(0, 0),
	})
}

func (lw *layerWriter) close() error { return lw.tw.Close() }

func (lw *layerWriter) writeFile(host, name string) error {
	var st unix.Stat_t
	if err := unix.Lstat(host, &st); err != nil {
		return fmt.Errorf("lstat %s: %w", host, err)
	}
	return lw.writeStat(host, name, &st)
}

// writeStat writes the entry of host, whose lstat is st. A regular file is
// opened once: its security.capability is read from the descriptor, and
// its data is copied with a large buffer, as much as the lstat says.
func (lw *layerWriter) writeStat(host, name string, st *unix.Stat_t) error {
	fd := -1
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		var err error
		if fd, err = unix.Open(host, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("opening %s: %w", host, err)
		}
		defer unix.Close(fd)
	}
	hdr, err := headerForFd(host, name, st, fd)
	if err != nil {
		return err
	}
	if hdr == nil { // sockets cannot be represented
		return nil
	}
	if hdr.Typeflag != tar.TypeDir && st.Nlink > 1 {
		k := devIno{uint64(st.Dev), st.Ino}
		if first, ok := lw.links[k]; ok {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			hdr.Size = 0
			hdr.PAXRecords = nil // the target entry carries them
			return lw.tw.WriteHeader(hdr)
		}
		lw.links[k] = hdr.Name
	}
	if err := lw.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing tar header for %s: %w", name, err)
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
		return nil
	}
	if lw.buf == nil {
		lw.buf = make([]byte, 1<<20)
	}
	for left := hdr.Size; left > 0; {
		n, err := unix.Read(fd, lw.buf[:min(int64(len(lw.buf)), left)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", host, err)
		}
		if n == 0 {
			return fmt.Errorf("writing %s to layer: %w", host, io.ErrUnexpectedEOF)
		}
		if _, err := lw.tw.Write(lw.buf[:n]); err != nil {
			return fmt.Errorf("writing %s to layer: %w", host, err)
		}
		left -= int64(n)
	}
	return nil
}

// headerForFd describes host (with stat st) as layer entry name, as
// containerd's change writer (BuildKit's) does: the mtime rounded to the
// nearest second (what archive/tar does to a header without a format),
// numeric owners only, and of the xattrs only security.capability, read
// from fd when it is an open descriptor of host (else -1).
func headerForFd(host, name string, st *unix.Stat_t, fd int) (*tar.Header, error) {
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec).Round(time.Second),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name = strings.TrimSuffix(name, "/") + "/"
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		t, err := os.Readlink(host)
		if err != nil {
			return nil, err
		}
		hdr.Linkname = t
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(uint64(st.Rdev)))
		hdr.Devminor = int64(unix.Minor(uint64(st.Rdev)))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil, nil
	}
	var capab []byte
	var err error
	if fd >= 0 {
		capab, err = fdCapability(fd, host)
	} else {
		capab, err = capability(host)
	}
	if err != nil {
		return nil, err
	}
	if len(capab) > 0 {
		hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(capab)}
	}
	return hdr, nil
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// readXattrs returns the xattrs of host (not following symlinks), without
// overlayfs-private ones.
func readXattrs(host string) (map[string]string, error) {
	names, err := fsutil.ListXattrs(host)
	if err != nil {
		return nil, err
	}
	var out map[string]string
	for _, n := range names {
		if strings.HasPrefix(n, overlayXattrPrefix) {
			continue
		}
		v, err := fsutil.GetXattr(host, n)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return nil, fmt.Errorf("reading xattr %s of %s: %w", n, host, err)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[n] = string(v)
	}
	return out, nil
}

// childName joins a layer path and a child name ("" is the root).
func childName(dir, name string) string {
	if dir == "" {
		return name
	}
	return path.Join(dir, name)
}
