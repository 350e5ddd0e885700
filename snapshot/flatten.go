package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// flattenDepth bounds the lower directories of an overlay mount. A
// deeper chain (1000 COPY instructions make one) cannot be mounted as is:
// overlayfs stacks at most 500 lower directories and their paths must fit
// in one page. Its lower part is mounted instead through a "flat"
// directory: the merged tree of one snapshot and all its parents, copied
// once (snapshots/<id>/flat) and shared by every child. Flat points are
// the snapshots at depths that are multiples of flattenDepth, so a chain
// of any depth mounts at most flattenDepth+1 directories, and each flat
// is built from the one below it plus flattenDepth layers. Ordinary images
// (docker caps them near 127 layers) never reach it.
var flattenDepth = 128

// flatDir is the merged tree of s and its parents, when it was made.
func (s *snap) flatDir() string { return filepath.Join(s.dir, "flat") }

// flatPoint returns the index in chain (topmost first) of the snapshot
// whose flat directory replaces it and everything below it, or -1 when
// chain is shallow enough to mount as is.
func flatPoint(chain []*snap) int {
	l := len(chain)
	if l <= flattenDepth {
		return -1
	}
	m := ((l - 1) / flattenDepth) * flattenDepth // depth of the flat point
	return l - m
}

// lowerDirs are the overlay lower directories of chain, topmost first:
// every layer's tree, or, past flattenDepth, the top layers and the flat
// directory of the flat point. A missing flat directory (removed by
// hand) falls back to every layer, and the mount then fails as the
// kernel says.
func lowerDirs(chain []*snap) []string {
	i := flatPoint(chain)
	n := len(chain)
	if i >= 0 {
		if _, err := os.Stat(chain[i].flatDir()); err == nil {
			n = i
		} else {
			i = -1
		}
	}
	dirs := make([]string, 0, n+1)
	for _, p := range chain[:n] {
		dirs = append(dirs, p.fsDir())
	}
	if i >= 0 {
		dirs = append(dirs, chain[i].flatDir())
	}
	return dirs
}

// ensureFlat makes the flat directory chain needs to be mounted, and
// those it is built from, when they are missing. Concurrent callers may
// build the same one; the first rename wins.
func (d *overlayDriver) ensureFlat(ctx context.Context, chain []*snap) error {
	i := flatPoint(chain)
	if i < 0 {
		return nil
	}
	return d.makeFlat(ctx, chain[i:])
}

// makeFlat makes the flat directory of chain[0], the merged tree of
// chain.
func (d *overlayDriver) makeFlat(ctx context.Context, chain []*snap) error {
	p := chain[0]
	if _, err := os.Stat(p.flatDir()); err == nil {
		return nil
	}
	if err := d.ensureFlat(ctx, chain); err != nil {
		return err
	}
	lowers := lowerDirs(chain)
	tmp, err := os.MkdirTemp(p.dir, "flat.tmp-")
	if err != nil {
		return fmt.Errorf("flattening snapshot %s: %w", p.id, err)
	}
	defer os.RemoveAll(tmp)
	var view []Mount
	if len(lowers) == 1 {
		view = []Mount{{Type: "bind", Source: lowers[0], Options: []string{"rbind", "ro"}}}
	} else {
		opts := append(append([]string(nil), d.opts...), "lowerdir="+strings.Join(lowers, ":"))
		view = []Mount{{Type: "overlay", Source: "overlay", Options: opts}}
	}
	err = WithMounts(ctx, [][]Mount{view}, func(roots []string) error {
		return copyTree(ctx, roots[0], tmp)
	})
	if err != nil {
		return fmt.Errorf("flattening snapshot %s and its %d parents: %w", p.id, len(chain)-1, err)
	}
	if err := os.Rename(tmp, p.flatDir()); err != nil && !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENOTEMPTY) {
		return fmt.Errorf("flattening snapshot %s: %w", p.id, err)
	}
	return nil
}
