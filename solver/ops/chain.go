package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/solver"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// ChainLink is one layer of a result as a cache export describes it: the
// result's filesystem is its links' layers applied in order.
type ChainLink struct {
	// Layer is the layer blob (BuildKit's empty layer for a step that
	// changed nothing).
	Layer *cache.Layer
	// Base is set for a layer of a base image (its history comes with the
	// base image's config, not from this build).
	Base bool
	// Created is when the step's result was made (steps only): the time
	// its history entry gets.
	Created time.Time
}

// Chain describes the stored result id as layers (computing the step
// layers not computed yet): what a cache export writes for its key.
func (w *Worker) Chain(ctx context.Context, id string) ([]ChainLink, error) {
	rec, err := w.loadRecord(id)
	if err != nil {
		return nil, err
	}
	items, err := w.layerItems(rec)
	if err != nil {
		return nil, err
	}
	chain, err := w.computeLayers(ctx, items)
	if err != nil {
		return nil, err
	}
	w.stampLegacy(chain)
	out := make([]ChainLink, 0, len(items))
	for _, it := range items {
		switch {
		case it.image != nil:
			l := *it.image
			out = append(out, ChainLink{Layer: &l, Base: true})
		default:
			l := *it.step.Layer
			out = append(out, ChainLink{Layer: &l, Created: it.step.Created})
		}
	}
	return out, nil
}

// Lineage returns the IDs of the records r is made of: r's, its parents',
// the merged inputs' (the results whose layers an image of r contains).
func (w *Worker) Lineage(r solver.Result) (map[string]bool, error) {
	out := map[string]bool{}
	rec := refRecord(r)
	var walk func(rec *record, depth int) error
	walk = func(rec *record, depth int) error {
		if rec == nil || out[rec.ID] {
			return nil
		}
		if depth > 100000 {
			return fmt.Errorf("result %s: record chain too deep", rec.ID)
		}
		out[rec.ID] = true
		ids := append([]string{rec.Parent}, rec.Merge...)
		for _, id := range ids {
			if id == "" {
				continue
			}
			p, err := w.loadRecord(id)
			if err != nil {
				return err
			}
			if err := walk(p, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(rec, 0)
}

// ImportChain stores a result described by chain (from a remote cache) as
// lazy records and returns the ID of the result: nothing is downloaded or
// unpacked until an op needs the result's files (see materializeInputs)
// or an export reads its layers (through the blob store's fetcher). Equal
// chains give equal IDs, and records that exist are reused as they are.
func (w *Worker) ImportChain(chain []ChainLink) (string, error) {
	cur := ""
	var base []cache.Layer
	flush := func() error {
		if len(base) == 0 {
			return nil
		}
		img := &record{ID: chainID("rc-image-", "", base...), Image: true, ImageLayers: base, Computed: true, Lazy: true}
		base = nil
		if err := w.ensureRecord(img); err != nil {
			return err
		}
		if cur == "" {
			cur = img.ID
			return nil
		}
		m := &record{ID: chainID("rc-merge-", cur+" "+img.ID), Merge: []string{cur, img.ID}, Computed: true, Lazy: true}
		if err := w.ensureRecord(m); err != nil {
			return err
		}
		cur = m.ID
		return nil
	}
	for _, l := range chain {
		if l.Base {
			if l.Layer == nil {
				return "", errors.New("base layer without blob")
			}
			base = append(base, *l.Layer)
			continue
		}
		if err := flush(); err != nil {
			return "", err
		}
		if l.Layer == nil {
			// Every step has a layer (an empty one when it changed
			// nothing, as BuildKit's).
			return "", errors.New("step without layer")
		}
		lc := *l.Layer
		st := &record{Parent: cur, Computed: true, Lazy: true, Created: l.Created.UTC(), Layer: &lc, Empty: lc.Digest == emptyLayerDigest}
		st.ID = chainID("rc-step-", cur+" "+st.Created.Format(time.RFC3339Nano), lc)
		if err := w.ensureRecord(st); err != nil {
			return "", err
		}
		cur = st.ID
	}
	if err := flush(); err != nil {
		return "", err
	}
	if cur == "" {
		return "", errors.New("empty chain")
	}
	return cur, nil
}

// emptyLayerDigest is the digest of emptyLayerGzip.
var emptyLayerDigest = digest.FromBytes(emptyLayerGzip)

// chainID names an imported record by what it is made of.
func chainID(prefix, parent string, layers ...cache.Layer) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", parent)
	for _, l := range layers {
		fmt.Fprintf(h, "%s %s %s %d\n", l.MediaType, l.Digest, l.DiffID, l.Size)
	}
	return prefix + hex.EncodeToString(h.Sum(nil))
}

// ensureRecord keeps rec in memory (pending, see record.pending) unless a
// record of its ID exists.
func (w *Worker) ensureRecord(rec *record) error {
	if _, err := w.loadRecord(rec.ID); err == nil {
		return nil
	} else if !errors.Is(err, solver.ErrNotFound) {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.records[rec.ID]; !ok {
		rec.pending = true
		w.records[rec.ID] = rec
	}
	return nil
}

// materializeInputs unpacks the lazy results among inputs (see
// ImportChain) whose files the op is about to use.
func (w *Worker) materializeInputs(ctx context.Context, inputs []solver.Result) error {
	for _, in := range inputs {
		if rec := refRecord(in); rec != nil && rec.Lazy {
			if err := w.materializeLazy(ctx, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// materializeLazy makes the snapshot of lazy record rec: its layers are
// fetched (when the blob store does not have them) and unpacked into the
// snapshots named by their chain IDs, shared with images of the same
// layers.
func (w *Worker) materializeLazy(ctx context.Context, rec *record) error {
	unlock := w.layerMu.lock("lazy " + rec.ID)
	defer unlock()
	if rec.Snapshot != "" {
		if _, err := w.opt.Snapshotter.Stat(ctx, rec.Snapshot); err == nil {
			return nil
		}
	}
	layers, err := w.materialize(ctx, rec)
	if err != nil {
		return err
	}
	// Downloads overlap; unpacking is in order.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, l := range layers {
		g.Go(func() error {
			if err := w.opt.Blobs.Ensure(gctx, l.Digest); err != nil {
				return fmt.Errorf("cached layer %s: %w", l.Digest, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	name, err := UnpackLayers(ctx, w.opt.Snapshotter, w.opt.Blobs, layers, UnpackOptions{MaxSize: w.opt.MaxLayerSize})
	if err != nil {
		return err
	}
	w.mu.Lock()
	rec.Snapshot = name
	err = w.putRecordLocked(rec)
	w.mu.Unlock()
	return err
}
