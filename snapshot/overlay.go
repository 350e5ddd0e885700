package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// overlayDriver keeps each snapshot as an overlayfs upper dir.
type overlayDriver struct {
	// opts are mount options that keep an upper dir a plain diff
	// (no index, redirects or metacopy), for those the kernel knows.
	opts []string
}

func newOverlayDriver() *overlayDriver {
	var opts []string
	for _, o := range []string{"index", "redirect_dir", "metacopy"} {
		if _, err := os.Stat("/sys/module/overlay/parameters/" + o); err == nil {
			opts = append(opts, o+"=off")
		}
	}
	if inUserNS() {
		// userxattr refuses redirect_dir=off where the kernel turns
		// off into follow (redirect_always_follow): nofollow neither
		// makes nor follows redirects either.
		for i, o := range opts {
			if o == "redirect_dir=off" {
				opts[i] = "redirect_dir=nofollow"
			}
		}
		opts = append(opts, "userxattr")
	}
	return &overlayDriver{opts: opts}
}

func (d *overlayDriver) name() string { return "overlay" }

// create makes the flat directory a deep chain is mounted through.
func (d *overlayDriver) create(ctx context.Context, s *snap, chain []*snap) error {
	return d.ensureFlat(ctx, chain)
}

func (d *overlayDriver) mounts(s *snap, chain []*snap) []Mount {
	bind := func(dir string, ro bool) []Mount {
		o := []string{"rbind", "rw"}
		if ro {
			o = []string{"rbind", "ro"}
		}
		return []Mount{{Type: "bind", Source: dir, Options: o}}
	}
	lower := lowerDirs(chain)
	if s.kind == KindView {
		switch len(chain) {
		case 0:
			return bind(s.fsDir(), true)
		case 1:
			return bind(chain[0].fsDir(), true)
		}
		opts := append(append([]string(nil), d.opts...), "lowerdir="+strings.Join(lower, ":"))
		return []Mount{{Type: "overlay", Source: "overlay", Options: opts}}
	}
	if len(chain) == 0 {
		return bind(s.fsDir(), false)
	}
	opts := append(append([]string(nil), d.opts...),
		"workdir="+s.workDir(), "upperdir="+s.fsDir(), "lowerdir="+strings.Join(lower, ":"))
	return []Mount{{Type: "overlay", Source: "overlay", Options: opts}}
}

// apply extracts through the merged view so that the kernel turns
// deletions into whiteouts; a snapshot without parents is its own tree.
func (d *overlayDriver) apply(ctx context.Context, s *snap, chain []*snap, r io.Reader) error {
	if len(chain) == 0 {
		return applyLayer(ctx, s.fsDir(), r)
	}
	return WithMounts(ctx, [][]Mount{d.mounts(s, chain)}, func(roots []string) error {
		return applyLayer(ctx, roots[0], r)
	})
}

// diff walks the upper dir, which is the diff, the way BuildKit's overlay
// differ does (see overlayChanges): entries in walk order by real name,
// whiteouts only for names the lower layers have, entries that overlay
// only copied up left out (directories still written as parents), and
// opaque directories that shadow a lower entry diffed against it entry by
// entry instead of marked with .wh..wh..opq.
func (d *overlayDriver) diff(ctx context.Context, s *snap, chain []*snap, w io.Writer) error {
	lowers := make([]string, len(chain))
	for i, p := range chain {
		lowers[i] = p.fsDir()
	}
	lw := newLayerWriter(w)
	if err := overlayChanges(ctx, lw, s.fsDir(), "", baseDir{dirs: lowers, overlay: true}); err != nil {
		return err
	}
	return lw.close()
}

// lowerEntry is what the lower layers show at one path: the host path
// and stat of the topmost entry, and, for a directory, the directories
// of all layers that merge into it (topmost first).
type lowerEntry struct {
	host string
	st   unix.Stat_t
	dirs []string
}

// lookupLower resolves child name of the merged lower directory made of
// dirs (topmost first) the way overlayfs does: a whiteout hides the name
// in the layers below, a non-directory ends the lookup, and an opaque
// directory stops the merge with lower layers. It returns nil when the
// lower layers do not have name.
func lookupLower(dirs []string, name string) (*lowerEntry, error) {
	var le *lowerEntry
	for _, dir := range dirs {
		p := filepath.Join(dir, name)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				continue
			}
			return nil, fmt.Errorf("lstat %s: %w", p, err)
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if le == nil {
			if isWhiteout(&st) {
				return nil, nil
			}
			le = &lowerEntry{host: p, st: st}
			if !isDir {
				return le, nil
			}
		} else if !isDir {
			// A whiteout or non-directory below a directory ends
			// the merge.
			return le, nil
		}
		le.dirs = append(le.dirs, p)
		if isOpaque(p) {
			return le, nil
		}
	}
	return le, nil
}

// overlayPreconditions checks what overlay needs before any mount: root
// privileges (in a user namespace too) and a root path its mount options
// can name.
func overlayPreconditions(root string) error {
	if os.Geteuid() != 0 {
		return errors.New("overlay snapshotter needs root")
	}
	if strings.ContainsAny(root, ":,") {
		return fmt.Errorf("overlay cannot use root %s: path contains ':' or ','", root)
	}
	return nil
}

// overlaySupported mounts a small overlay under root in a private mount
// namespace and checks that deletions show up as whiteouts in the upper
// dir.
func overlaySupported(root string) error {
	if err := overlayPreconditions(root); err != nil {
		return err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(root, "overlay-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l1, l2, up, wk := filepath.Join(dir, "l1"), filepath.Join(dir, "l2"), filepath.Join(dir, "u"), filepath.Join(dir, "w")
	for _, p := range []string{l1, l2, up, wk} {
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(l1, "f"), nil, 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(l1, "d", "x"), 0o755); err != nil {
		return err
	}
	d := newOverlayDriver()
	opts := append(append([]string(nil), d.opts...), "workdir="+wk, "upperdir="+up, "lowerdir="+l1+":"+l2)
	err = WithMounts(context.Background(), [][]Mount{{{Type: "overlay", Source: "overlay", Options: opts}}}, func(roots []string) error {
		if err := os.Remove(filepath.Join(roots[0], "f")); err != nil {
			return err
		}
		// A directory made where a lower one was removed must be
		// opaque (needs xattrs overlay can write: userxattr in a
		// user namespace).
		if err := os.RemoveAll(filepath.Join(roots[0], "d")); err != nil {
			return err
		}
		return os.Mkdir(filepath.Join(roots[0], "d"), 0o755)
	})
	if err != nil {
		return fmt.Errorf("overlay test mount under %s: %w", root, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(up, "f"), &st); err != nil || !isWhiteout(&st) {
		return fmt.Errorf("overlay under %s does not make whiteouts in the upper dir", root)
	}
	if !isOpaque(filepath.Join(up, "d")) {
		return fmt.Errorf("overlay under %s does not mark opaque directories with %s", root, opaqueXattr())
	}
	return nil
}
