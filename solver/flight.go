package solver

import (
	"context"
	"sync"
)

// flight computes a value once and shares it between concurrent callers,
// each with its own context. The computation runs with a context of its own
// (keeping the first caller's values) that is cancelled only when every
// caller waiting for it has given up; the last caller to give up waits for
// the computation to stop, so nothing it started outlives it. A success is
// memoized; an error is returned to the callers waiting at the time and the
// next call starts afresh.
type flight[T any] struct {
	mu   sync.Mutex
	done bool
	val  T
	call *flightCall[T]
}

type flightCall[T any] struct {
	done    chan struct{}
	val     T
	err     error
	waiters int
	cancel  context.CancelFunc
}

func (f *flight[T]) do(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	f.mu.Lock()
	if f.done {
		v := f.val
		f.mu.Unlock()
		return v, nil
	}
	if err := ctx.Err(); err != nil {
		f.mu.Unlock()
		var zero T
		return zero, context.Cause(ctx)
	}
	c := f.call
	if c == nil {
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &flightCall[T]{done: make(chan struct{}), cancel: cancel}
		f.call = c
		go func() {
			v, err := fn(cctx)
			f.mu.Lock()
			c.val, c.err = v, err
			if err == nil && !f.done {
				f.done, f.val = true, v
			}
			if f.call == c {
				f.call = nil
			}
			f.mu.Unlock()
			cancel()
			close(c.done)
		}()
	}
	c.waiters++
	f.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
	}
	f.mu.Lock()
	c.waiters--
	last := c.waiters == 0
	if last {
		c.cancel()
		if f.call == c {
			f.call = nil // a new caller must not join a cancelled call
		}
	}
	f.mu.Unlock()
	if last {
		<-c.done
	}
	var zero T
	return zero, context.Cause(ctx)
}

// peek returns the memoized value, if the computation succeeded.
func (f *flight[T]) peek() (T, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.val, f.done
}
