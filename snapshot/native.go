package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// nativeDriver keeps each active snapshot as a full copy of its parent's
// tree; views bind the parent's tree read-only.
type nativeDriver struct{}

func (nativeDriver) name() string { return "native" }

func (nativeDriver) create(ctx context.Context, s *snap, chain []*snap) error {
	if s.kind == KindView || len(chain) == 0 {
		return nil
	}
	return copyTree(ctx, chain[0].fsDir(), s.fsDir())
}

func (nativeDriver) mounts(s *snap, chain []*snap) []Mount {
	if s.kind == KindView {
		dir := s.fsDir()
		if len(chain) > 0 {
			dir = chain[0].fsDir()
		}
		return []Mount{{Type: "bind", Source: dir, Options: []string{"rbind", "ro"}}}
	}
	return []Mount{{Type: "bind", Source: s.fsDir(), Options: []string{"rbind", "rw"}}}
}

func (nativeDriver) apply(ctx context.Context, s *snap, chain []*snap, r io.Reader) error {
	return applyLayer(ctx, s.fsDir(), r)
}

// diff compares the snapshot's tree with its parent's: new and changed
// entries are written with their parent directories, missing ones become
// whiteouts, and an entry whose type changed is written whole.
func (nativeDriver) diff(ctx context.Context, s *snap, chain []*snap, w io.Writer) error {
	lower := ""
	if len(chain) > 0 {
		lower = chain[0].fsDir()
	}
	lw := newLayerWriter(w)
	if err := nativeDiffDir(ctx, lw, lower, s.fsDir(), ""); err != nil {
		return err
	}
	return lw.close()
}

// nativeDiffDir diffs directory upper against directory lower ("" when
// there is none) under layer name.
func nativeDiffDir(ctx context.Context, lw *layerWriter, lower, upper, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	type item struct {
		emit, real       string
		inLower, inUpper bool
	}
	byName := map[string]*item{}
	var items []*item
	add := func(dir string, lowerSide bool) error {
		if dir == "" {
			return nil
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("reading %s: %w", dir, err)
		}
		for _, e := range ents {
			it := byName[e.Name()]
			if it == nil {
				it = &item{real: e.Name()}
				byName[e.Name()] = it
				items = append(items, it)
			}
			if lowerSide {
				it.inLower = true
			} else {
				it.inUpper = true
			}
		}
		return nil
	}
	if err := add(lower, true); err != nil {
		return err
	}
	if err := add(upper, false); err != nil {
		return err
	}
	for _, it := range items {
		it.emit = it.real
		if !it.inUpper {
			it.emit = whiteoutPrefix + it.real
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].emit < items[j].emit })
	for _, it := range items {
		n := childName(name, it.emit)
		up := filepath.Join(upper, it.real)
		if !it.inUpper {
			if err := lw.addWhiteout(n); err != nil {
				return err
			}
			continue
		}
		var ust unix.Stat_t
		if err := unix.Lstat(up, &ust); err != nil {
			return fmt.Errorf("lstat %s: %w", up, err)
		}
		udir := ust.Mode&unix.S_IFMT == unix.S_IFDIR
		if !it.inLower {
			if err := addTree(ctx, lw, up, n); err != nil {
				return err
			}
			continue
		}
		lp := filepath.Join(lower, it.real)
		var lst unix.Stat_t
		if err := unix.Lstat(lp, &lst); err != nil {
			return fmt.Errorf("lstat %s: %w", lp, err)
		}
		if ust.Mode&unix.S_IFMT != lst.Mode&unix.S_IFMT {
			// Replaced by another type: the new entry replaces the old
			// one (and its subtree) when extracted.
			if err := addTree(ctx, lw, up, n); err != nil {
				return err
			}
			continue
		}
		same, err := sameFile(lp, up, &lst, &ust)
		if err != nil {
			return err
		}
		if !udir {
			if !same {
				if err := lw.addFile(up, n); err != nil {
					return err
				}
			}
			continue
		}
		if err := lw.push(up, n, !same); err != nil {
			return err
		}
		if err := nativeDiffDir(ctx, lw, lp, up, n); err != nil {
			return err
		}
		lw.pop()
	}
	return nil
}

// addTree writes host and, for a directory, everything below it.
func addTree(ctx context.Context, lw *layerWriter, host, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := lw.addFile(host, name); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(host, &st); err != nil {
		return fmt.Errorf("lstat %s: %w", host, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	ents, err := os.ReadDir(host)
	if err != nil {
		return fmt.Errorf("reading %s: %w", host, err)
	}
	for _, e := range ents {
		if err := addTree(ctx, lw, filepath.Join(host, e.Name()), childName(name, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// sameFile reports whether two entries of the same type have the same
// metadata (mode, owners, mtime, size, device, xattrs, link target) and
// content.
func sameFile(a, b string, as, bs *unix.Stat_t) (bool, error) {
	if as.Mode != bs.Mode || as.Uid != bs.Uid || as.Gid != bs.Gid || as.Mtim != bs.Mtim ||
		as.Rdev != bs.Rdev {
		return false, nil
	}
	typ := as.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && as.Size != bs.Size {
		return false, nil
	}
	ax, err := readXattrs(a)
	if err != nil {
		return false, err
	}
	bx, err := readXattrs(b)
	if err != nil {
		return false, err
	}
	if len(ax) != len(bx) {
		return false, nil
	}
	for k, v := range ax {
		if w, ok := bx[k]; !ok || w != v {
			return false, nil
		}
	}
	switch typ {
	case unix.S_IFLNK:
		at, err := os.Readlink(a)
		if err != nil {
			return false, err
		}
		bt, err := os.Readlink(b)
		if err != nil {
			return false, err
		}
		return at == bt, nil
	case unix.S_IFREG:
		return sameContent(a, b)
	}
	return true, nil
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
