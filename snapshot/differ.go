package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"

	"github.com/builderdev/builder/internal/fsutil"
)

// The differs in this file produce the same tar entries as BuildKit's
// overlay differ (util/overlay Changes) feeding containerd's archive
// ChangeWriter, and as continuity's double-walking differ for the native
// driver:
//
//   - entries come in depth-first order, each directory's entries sorted by
//     their real names (a deletion of "group" sorts as "group", not as
//     ".wh.group");
//   - a deletion is a ".wh.<name>" entry, written only when the name exists
//     in the base tree; a deleted directory's children get no entries;
//   - an entry present in both trees is written only when sameDirent says it
//     changed; an unchanged directory is still written, from the new tree,
//     as the parent of a written descendant;
//   - an overlay directory that is opaque and shadows an entry of the base
//     is diffed entry by entry against the base (individual deletions, no
//     ".wh..wh..opq" marker), as BuildKit does.

// baseDir is a directory of the base tree a diff compares with: for the
// overlay driver the merge of the lower layers' directories at one path
// (topmost first), for the native driver one directory of the parent's
// tree. A baseDir without dirs is an absent or empty directory.
type baseDir struct {
	dirs    []string
	overlay bool
}

// lookup returns the entry name of the base directory, or nil when the
// base has no such entry.
func (b baseDir) lookup(name string) (*lowerEntry, error) {
	if len(b.dirs) == 0 {
		return nil, nil
	}
	if b.overlay {
		return lookupLower(b.dirs, name)
	}
	p := filepath.Join(b.dirs[0], name)
	le := &lowerEntry{host: p}
	if err := unix.Lstat(p, &le.st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("lstat %s: %w", p, err)
	}
	if le.st.Mode&unix.S_IFMT == unix.S_IFDIR {
		le.dirs = []string{p}
	}
	return le, nil
}

// child is the base directory at entry le (none unless le is a directory).
func (b baseDir) child(le *lowerEntry) baseDir {
	if le == nil {
		return baseDir{overlay: b.overlay}
	}
	return baseDir{dirs: le.dirs, overlay: b.overlay}
}

// names lists the visible entries of the base directory, sorted: for an
// overlay merge the union of its layers' entries without whited-out ones.
func (b baseDir) names() ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, d := range b.dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", d, err)
		}
		for _, e := range ents {
			if !seen[e.Name()] {
				seen[e.Name()] = true
				out = append(out, e.Name())
			}
		}
	}
	sort.Strings(out)
	if !b.overlay {
		return out, nil
	}
	visible := out[:0]
	for _, n := range out {
		le, err := lookupLower(b.dirs, n)
		if err != nil {
			return nil, err
		}
		if le != nil {
			visible = append(visible, n)
		}
	}
	return visible, nil
}

func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func isOpaque(host string) bool {
	v, err := fsutil.GetXattr(host, opaqueXattr())
	return err == nil && string(v) == "y"
}

// upperEntry is one entry of a directory of the new tree.
type upperEntry struct {
	name string
	host string
	st   unix.Stat_t
}

// readUpper lists host's entries sorted by (real) name, with their stats;
// without whiteouts when skipWhiteouts (the view of an overlay upper dir
// that BuildKit diffs opaque directories against hides them).
func readUpper(host string, skipWhiteouts bool) ([]upperEntry, error) {
	ents, err := os.ReadDir(host)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", host, err)
	}
	out := make([]upperEntry, 0, len(ents))
	for _, e := range ents {
		u := upperEntry{name: e.Name(), host: filepath.Join(host, e.Name())}
		if err := unix.Lstat(u.host, &u.st); err != nil {
			return nil, fmt.Errorf("lstat %s: %w", u.host, err)
		}
		if skipWhiteouts && isWhiteout(&u.st) {
			continue
		}
		out = append(out, u)
	}
	return out, nil // os.ReadDir sorts by name
}

func isDirStat(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

// overlayChanges writes the changes recorded in overlay upper directory
// host (layer path name) against base, the merged lower directory at the
// same path, like BuildKit's overlay differ: it walks the upper dir by real
// name, turns whiteouts of names the base has into ".wh." entries (and
// drops the others), skips entries that sameDirent finds unchanged, and
// diffs opaque directories that shadow a base entry against the base.
func overlayChanges(ctx context.Context, lw *layerWriter, host, name string, base baseDir) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ents, err := readUpper(host, false)
	if err != nil {
		return err
	}
	for i := range ents {
		u := &ents[i]
		n := childName(name, u.name)
		be, err := base.lookup(u.name)
		if err != nil {
			return err
		}
		if isWhiteout(&u.st) {
			if be == nil {
				continue // nothing to delete
			}
			if err := lw.addWhiteout(childName(name, whiteoutPrefix+u.name)); err != nil {
				return err
			}
			continue
		}
		changed := true
		if be != nil {
			same, err := sameDirent(be.host, u.host, &be.st, &u.st)
			if err != nil {
				return err
			}
			changed = !same
		}
		if !isDirStat(&u.st) {
			if changed {
				if err := lw.addFileStat(u.host, n, &u.st); err != nil {
					return err
				}
			}
			continue
		}
		if err := lw.push(u.host, n, changed); err != nil {
			return err
		}
		if be != nil && isOpaque(u.host) {
			err = walkChanges(ctx, lw, base.child(be), u.host, n, true)
		} else {
			err = overlayChanges(ctx, lw, u.host, n, base.child(be))
		}
		if err != nil {
			return err
		}
		lw.pop()
	}
	return nil
}

// walkChanges writes the changes of directory host (layer path name)
// against base by walking both, like continuity's double-walking differ:
// names only in base become ".wh." entries (their subtrees get none), names
// only in host are written with their subtrees, and names in both are
// written when sameDirent finds them changed. skipWhiteouts hides 0/0
// character devices of host (they are overlay whiteouts, not devices).
func walkChanges(ctx context.Context, lw *layerWriter, base baseDir, host, name string, skipWhiteouts bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	lower, err := base.names()
	if err != nil {
		return err
	}
	upper, err := readUpper(host, skipWhiteouts)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(lower) || j < len(upper) {
		switch {
		case j == len(upper) || i < len(lower) && lower[i] < upper[j].name:
			if err := lw.addWhiteout(childName(name, whiteoutPrefix+lower[i])); err != nil {
				return err
			}
			i++
			continue
		case i == len(lower) || upper[j].name < lower[i]:
			u := &upper[j]
			if err := addTree(ctx, lw, u.host, childName(name, u.name), &u.st, skipWhiteouts); err != nil {
				return err
			}
			j++
			continue
		}
		u := &upper[j]
		i, j = i+1, j+1
		n := childName(name, u.name)
		be, err := base.lookup(u.name)
		if err != nil {
			return err
		}
		if be == nil {
			return fmt.Errorf("diffing %s: base entry %s vanished", host, u.name)
		}
		same, err := sameDirent(be.host, u.host, &be.st, &u.st)
		if err != nil {
			return err
		}
		if !isDirStat(&u.st) {
			if !same {
				if err := lw.addFileStat(u.host, n, &u.st); err != nil {
					return err
				}
			}
			continue
		}
		if err := lw.push(u.host, n, !same); err != nil {
			return err
		}
		if err := walkChanges(ctx, lw, base.child(be), u.host, n, skipWhiteouts); err != nil {
			return err
		}
		lw.pop()
	}
	return nil
}

// addTree writes host (with stat st) and, for a directory, everything
// below it; skipWhiteouts leaves out 0/0 character devices.
func addTree(ctx context.Context, lw *layerWriter, host, name string, st *unix.Stat_t, skipWhiteouts bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := lw.addFileStat(host, name, st); err != nil {
		return err
	}
	if !isDirStat(st) {
		return nil
	}
	ents, err := readUpper(host, skipWhiteouts)
	if err != nil {
		return err
	}
	for i := range ents {
		if err := addTree(ctx, lw, ents[i].host, childName(name, ents[i].name), &ents[i].st, skipWhiteouts); err != nil {
			return err
		}
	}
	return nil
}

// sameDirent reports whether entry b of the new tree is unchanged from
// entry a of the base, with the rules of BuildKit's overlay differ (and
// continuity's walking differ): the same inode is unchanged; otherwise
// mode (type and permissions), owners, device number and
// security.capability must be equal, and for non-directories also size and
// mtime seconds. When both mtimes have zero nanoseconds (truncated, as
// after extracting a tar) the content or link target decides; otherwise
// the nanoseconds must be equal too. Directory mtimes and other xattrs do
// not count.
func sameDirent(a, b string, as, bs *unix.Stat_t) (bool, error) {
	if as.Dev == bs.Dev && as.Ino == bs.Ino {
		return true, nil
	}
	if as.Mode != bs.Mode || as.Uid != bs.Uid || as.Gid != bs.Gid || as.Rdev != bs.Rdev {
		return false, nil
	}
	ca, err := capability(a)
	if err != nil {
		return false, err
	}
	cb, err := capability(b)
	if err != nil {
		return false, err
	}
	if !bytes.Equal(ca, cb) {
		return false, nil
	}
	if isDirStat(as) {
		return true, nil
	}
	if as.Size != bs.Size || as.Mtim.Sec != bs.Mtim.Sec {
		return false, nil
	}
	if as.Mtim.Nsec != 0 || bs.Mtim.Nsec != 0 {
		return as.Mtim.Nsec == bs.Mtim.Nsec, nil
	}
	switch as.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		ta, err := os.Readlink(a)
		if err != nil {
			return false, err
		}
		tb, err := os.Readlink(b)
		if err != nil {
			return false, err
		}
		return ta == tb, nil
	case unix.S_IFREG:
		if as.Size == 0 {
			return true, nil
		}
		return sameContent(a, b)
	}
	return true, nil
}

// capability returns the security.capability xattr of host (nil when
// absent).
func capability(host string) ([]byte, error) {
	v, err := fsutil.GetXattr(host, "security.capability")
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading security.capability of %s: %w", host, err)
	}
	return v, nil
}

// fdCapability is capability for an open descriptor of host.
func fdCapability(fd int, host string) ([]byte, error) {
	var buf [128]byte
	n, err := unix.Fgetxattr(fd, "security.capability", buf[:])
	switch {
	case err == nil:
		return append([]byte(nil), buf[:n]...), nil
	case errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP):
		return nil, nil
	case errors.Is(err, unix.ERANGE):
		return capability(host)
	}
	return nil, fmt.Errorf("reading security.capability of %s: %w", host, err)
}

func sameContent(a, b string) (bool, error) {
	fa, err := os.OpenFile(a, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.OpenFile(b, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == io.EOF || eb == io.ErrUnexpectedEOF, nil
		}
		if ea != nil {
			return false, fmt.Errorf("reading %s: %w", a, ea)
		}
		if eb != nil {
			return false, fmt.Errorf("reading %s: %w", b, eb)
		}
	}
}
