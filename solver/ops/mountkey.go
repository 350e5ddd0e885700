package ops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops/internal/fileop"
	digest "github.com/opencontainers/go-digest"
)

// mountSelectors returns, per input index, the selectors through which the
// non-root bind and cache mounts of op read that input, for the inputs that
// qualify for a content-based cache key: never the root's input, and only
// when every use has a selector other than "/" (a whole tree counts by its
// cache key, which is cheaper and as precise). Non-root mounts never become
// part of the step's result, so keying them by content is safe (BuildKit's
// getMountDeps).
func mountSelectors(op llb.ExecOp, inputs int) map[int][]string {
	root := -1
	if len(op.Mounts) > 0 {
		root = op.Mounts[0].Input
	}
	sels := map[int][]string{}
	whole := map[int]bool{}
	for _, m := range op.Mounts[min(1, len(op.Mounts)):] {
		if m.Input < 0 || m.Input >= inputs || m.Input == root {
			continue
		}
		if m.Type != llb.MountBind && m.Type != llb.MountCache {
			continue
		}
		sel := selectorPath(m.Selector)
		if sel == "/" {
			whole[m.Input] = true
			continue
		}
		sels[m.Input] = append(sels[m.Input], sel)
	}
	for i := range whole {
		delete(sels, i)
	}
	for i, ss := range sels {
		sels[i] = dedupeSelectors(ss)
	}
	return sels
}

// dedupeSelectors sorts paths and drops those under another one.
func dedupeSelectors(ss []string) []string {
	sort.Strings(ss)
	var out []string
	for _, s := range ss {
		if n := len(out); n > 0 && (s == out[n-1] || strings.HasPrefix(s, out[n-1]+"/")) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// selectedDigest is the content digest of the directories sels of the input
// r (a local context or a stage), each in the canonical form of a COPY's
// checksum. A missing selector counts as missing (the mount reports it).
func (w *Worker) selectedDigest(ctx context.Context, r solver.Result, sels []string) (digest.Digest, error) {
	sum := func(in fileop.Input, hc fileop.Hasher) (digest.Digest, error) {
		var b strings.Builder
		for _, sel := range sels {
			c := &llb.Copy{SrcPaths: []string{sel}, FollowSymlinks: true, DirContentsOnly: true}
			d, err := fileop.Checksum(ctx, in, c, hc)
			switch {
			case errors.Is(err, fs.ErrNotExist) || errors.Is(err, fileop.ErrNotFound):
				d = digest.FromString("missing")
			case err != nil:
				return "", fmt.Errorf("mount source %s: %w", sel, err)
			}
			fmt.Fprintf(&b, "%q %s\n", sel, d)
		}
		return digest.FromString(b.String()), nil
	}
	empty := digest.FromString("empty tree " + strings.Join(sels, "\x00"))
	switch x := r.(type) {
	case nil:
		return empty, nil
	case *localResult:
		return sum(x.in, w.opt.Hasher)
	case *Ref:
		if x.rec.Snapshot == "" {
			return empty, nil
		}
		sn := w.opt.Snapshotter
		view := newID("view-")
		ms, err := sn.View(ctx, view, x.rec.Snapshot)
		if err != nil {
			return "", err
		}
		defer sn.Remove(context.WithoutCancel(ctx), view)
		var d digest.Digest
		err = snapshot.WithMounts(ctx, [][]snapshot.Mount{ms}, func(roots []string) error {
			var err error
			// Snapshot mounts are temporary paths: no persistent stat cache.
			d, err = sum(fileop.Input{Root: roots[0]}, fileop.NewMemHasher())
			return err
		})
		return d, err
	default:
		return "", fmt.Errorf("unexpected mount input %T", r)
	}
}
