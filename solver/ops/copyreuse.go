package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops/internal/fileop"
)

// A COPY of a large context whose cache key changed (one file edited) does
// not copy the whole context again: the result of the previous run of the
// same op (same vertex digest) on the same parent snapshot is remembered
// under a copyreuse record, its tree is cloned with hard links into the new
// snapshot before anything is mounted, and the copy then only replaces what
// changed (fileop.Reuse). BuildKit copies everything again.

// copyReuseRecord names the last reusable result of a copy op on a parent.
// Its field is not named like a result record's, so that nothing takes it
// for one.
type copyReuseRecord struct {
	Snapshot string `json:"reuseSnapshot"`
}

// copyReusePrefix starts the ids of copy reuse records (see gc.go).
const copyReusePrefix = "copyreuse-"

// copyReuseID is the metadata id of the reuse record of op digest on the
// parent snapshot.
func copyReuseID(opDigest, parent string) string {
	h := sha256.Sum256([]byte(opDigest + "\n" + parent))
	return copyReusePrefix + hex.EncodeToString(h[:])
}

// reusableOp reports whether o is a single copy from a local context.
func (o *fileOp) reusableOp(inputs []solver.Result) bool {
	if len(o.op.Actions) != 1 || o.op.Actions[0].Copy == nil {
		return false
	}
	c := o.op.Actions[0].Copy
	if c.Src < 0 || c.Src >= len(inputs) {
		return false
	}
	_, ok := inputs[c.Src].(*localResult)
	return ok
}

// treeDir is the directory that holds the tree of the first mount set:
// an overlay's upper (rw) or topmost lower (ro) directory, or a bind
// mount's source. ok is false for anything else.
func treeDir(ms []snapshot.Mount, upper bool) (string, bool) {
	if len(ms) != 1 {
		return "", false
	}
	m := ms[0]
	switch m.Type {
	case "bind", "rbind":
		return m.Source, upper != slices.Contains(m.Options, "ro")
	case "overlay":
		for _, o := range m.Options {
			if upper {
				if d, ok := strings.CutPrefix(o, "upperdir="); ok {
					return d, true
				}
			} else if d, ok := strings.CutPrefix(o, "lowerdir="); ok {
				first, _, _ := strings.Cut(d, ":")
				return first, true
			}
		}
	}
	return "", false
}

// cloneForReuse fills the new step's tree with a clone of the previous
// reusable result of this op on parent, when there is one. It returns nil
// (leaving the step's tree empty) when there is nothing to reuse or the
// clone failed; release drops the hold on the previous result. An error
// means the step's tree could not be emptied after a failed clone.
func (o *fileOp) cloneForReuse(ctx context.Context, st *step, parent string) (reuse *fileop.Reuse, release func(), err error) {
	release = func() {}
	var rr copyReuseRecord
	if err := o.w.opt.Meta.Get(copyReuseID(o.v.Digest().String(), parent), &rr); err != nil {
		return nil, release, nil
	}
	dst, ok := treeDir(st.mounts, true)
	// On a parent, only an overlay's upper dir holds just the changes
	// (the copying snapshotter's tree is the whole parent).
	if !ok || (parent != "" && st.mounts[0].Type != "overlay") {
		return nil, release, nil
	}
	sn := o.w.opt.Snapshotter
	view := newID("view-")
	vm, err := sn.View(ctx, view, rr.Snapshot)
	if err != nil {
		return nil, release, nil // the previous result is gone
	}
	release = func() { sn.Remove(context.WithoutCancel(ctx), view) }
	src, ok := treeDir(vm, false)
	if !ok {
		return nil, release, nil
	}
	reuse, err = fileop.CloneTree(ctx, src, dst)
	if err != nil {
		if cerr := fileop.ClearTree(dst); cerr != nil {
			return nil, release, fmt.Errorf("%s: emptying the step after a failed clone of the previous result: %w", o.v.Name(), errors.Join(err, cerr))
		}
		return nil, release, nil
	}
	return reuse, release, nil
}

// saveReuse remembers ref as the reusable result of this op on parent.
func (o *fileOp) saveReuse(parent string, ref *Ref) error {
	return o.w.opt.Meta.Put(copyReuseID(o.v.Digest().String(), parent), &copyReuseRecord{Snapshot: ref.rec.Snapshot})
}
