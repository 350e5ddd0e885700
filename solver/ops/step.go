package ops

import (
	"context"
	"time"

	"github.com/builderdev/builder/snapshot"
)

// step is the snapshot of a result being made: an active snapshot on the
// parent's tree, committed and recorded by commit, or removed by discard
// when anything fails before that.
type step struct {
	w         *Worker
	id, key   string
	mounts    []snapshot.Mount
	committed bool
}

// newStep prepares the active snapshot of a new result (named prefix+random)
// on the committed snapshot parent ("" for the empty tree). The caller must
// defer discard.
func (w *Worker) newStep(ctx context.Context, prefix, parent string) (*step, error) {
	id := newID(prefix)
	s := &step{w: w, id: id, key: "active-" + id}
	mounts, err := w.opt.Snapshotter.Prepare(ctx, s.key, parent)
	if err != nil {
		return nil, err
	}
	s.mounts = mounts
	return s, nil
}

// discard removes the active snapshot unless it was committed; it runs even
// when ctx is cancelled.
func (s *step) discard(ctx context.Context) {
	if !s.committed {
		s.w.opt.Snapshotter.Remove(context.WithoutCancel(ctx), s.key)
	}
}

// commit makes the snapshot a stored result: rec gets the step's id and
// snapshot and is saved.
func (s *step) commit(ctx context.Context, rec *record) (*Ref, error) {
	if err := s.w.opt.Snapshotter.Commit(ctx, s.id, s.key); err != nil {
		return nil, err
	}
	s.committed = true
	rec.ID, rec.Snapshot = s.id, s.id
	if rec.Created.IsZero() {
		rec.Created = time.Now().UTC()
	}
	if err := s.w.saveRecord(rec); err != nil {
		return nil, err
	}
	return &Ref{w: s.w, rec: rec}, nil
}
