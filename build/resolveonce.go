package build

import (
	"context"
	"sync"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/registry"
)

// resolveOnce resolves each reference and platform once per build: every
// stage FROM the same image, the frontend and then the worker all ask, and
// without it each asks the registry again (a HEAD and a manifest GET per
// stage). One answer for the whole build is also what keeps its stages on
// one digest when the tag moves during the build. A failure is shared with
// the callers waiting for it (a stalled registry is waited for once), but
// not kept: a later caller asks again.
type resolveOnce struct {
	next imageBackend

	mu   sync.Mutex
	done map[resolveKey]*resolveCall
}

type resolveKey struct {
	ref      string
	platform llb.Platform
}

// resolveCall is one resolution, in flight until ready is closed.
// cancelled says that it failed because its caller gave up, not the
// registry: the callers waiting for it then ask again.
type resolveCall struct {
	ready     chan struct{}
	res       *registry.Resolved
	err       error
	cancelled bool
}

func newResolveOnce(next imageBackend) *resolveOnce {
	return &resolveOnce{next: next, done: map[resolveKey]*resolveCall{}}
}

// Resolve implements ops.ImageSource. The result is shared: callers do
// not change it.
func (r *resolveOnce) Resolve(ctx context.Context, ref string, p llb.Platform) (*registry.Resolved, error) {
	k := resolveKey{ref: ref, platform: p.WithDefaults()}
	for {
		r.mu.Lock()
		c, ok := r.done[k]
		if !ok {
			c = &resolveCall{ready: make(chan struct{})}
			r.done[k] = c
			r.mu.Unlock()
			c.res, c.err = r.next.Resolve(ctx, ref, p)
			if c.err != nil {
				c.cancelled = ctx.Err() != nil
				r.mu.Lock()
				delete(r.done, k)
				r.mu.Unlock()
			}
			close(c.ready)
			return c.res, c.err
		}
		r.mu.Unlock()
		if err := c.wait(ctx); err != nil {
			return nil, err
		}
		if !c.cancelled {
			return c.res, c.err
		}
		// Its caller gave up, this one did not: ask again.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// ResolveImageConfig implements dockerfile.ImageResolver.
func (r *resolveOnce) ResolveImageConfig(ctx context.Context, ref string, p llb.Platform) (string, string, []byte, error) {
	res, err := r.Resolve(ctx, ref, p)
	if err != nil {
		return "", "", nil, err
	}
	return res.Pinned, res.Named, res.Config, nil
}

// Pull implements ops.ImageSource.
func (r *resolveOnce) Pull(ctx context.Context, res *registry.Resolved) ([]cache.Layer, error) {
	return r.next.Pull(ctx, res)
}

// wait waits for c to be ready, or for ctx to be done. A failure shared
// with the caller cancels its context as it arrives (the frontend's other
// stages give up when one fails): when c is ready by then, its answer is
// the answer, not the cancellation, so that every stage waiting for the
// image reports its failure.
func (c *resolveCall) wait(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
	}
	select {
	case <-c.ready:
		return nil
	default:
		return ctx.Err()
	}
}
