package snapshot

import (
	"context"
	"io"
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

// diff compares the snapshot's tree with its parent's the way
// continuity's walking differ does for BuildKit's native snapshotter (see
// walkChanges), so that the same change gives the same entries as the
// overlay driver.
func (nativeDriver) diff(ctx context.Context, s *snap, chain []*snap, w io.Writer) error {
	base := baseDir{}
	if len(chain) > 0 {
		base.dirs = []string{chain[0].fsDir()}
	}
	lw := newLayerWriter(w)
	if err := walkChanges(ctx, lw, base, s.fsDir(), "", false); err != nil {
		return err
	}
	return lw.close()
}
