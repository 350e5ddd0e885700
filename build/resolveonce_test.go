package build

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/registry"
)

// countingBackend answers Resolve after release is closed, counting calls;
// it fails while fail is set.
type countingBackend struct {
	calls   atomic.Int32
	release chan struct{}
	fail    atomic.Bool
}

func (c *countingBackend) Resolve(ctx context.Context, ref string, p llb.Platform) (*registry.Resolved, error) {
	c.calls.Add(1)
	<-c.release
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.fail.Load() {
		return nil, errors.New("registry down")
	}
	return &registry.Resolved{Pinned: ref + "@sha256:" + p.Architecture, Config: []byte(`{}`)}, nil
}

func (c *countingBackend) ResolveImageConfig(ctx context.Context, ref string, p llb.Platform) (string, string, []byte, error) {
	r, err := c.Resolve(ctx, ref, p)
	if err != nil {
		return "", "", nil, err
	}
	return r.Pinned, r.Named, r.Config, nil
}

func (c *countingBackend) Pull(context.Context, *registry.Resolved) ([]cache.Layer, error) {
	return nil, nil
}

func TestResolveOnce(t *testing.T) {
	t.Parallel()
	next := &countingBackend{release: make(chan struct{})}
	r := newResolveOnce(next)
	ctx := context.Background()
	amd := llb.Platform{OS: "linux", Architecture: "amd64"}
	var wg sync.WaitGroup
	pinned := make([]string, 8)
	for i := range pinned {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, _, _, err := r.ResolveImageConfig(ctx, "reg/base:1", amd)
			if err != nil {
				t.Error(err)
			}
			pinned[i] = p
		}()
	}
	close(next.release)
	wg.Wait()
	if n := next.calls.Load(); n != 1 {
		t.Errorf("8 concurrent resolutions of one image asked the registry %d times, want 1", n)
	}
	for _, p := range pinned {
		if p != "reg/base:1@sha256:amd64" {
			t.Errorf("pinned %q", p)
		}
	}
	// Another platform or reference is another question.
	if _, err := r.Resolve(ctx, "reg/base:1", llb.Platform{OS: "linux", Architecture: "arm64"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(ctx, "reg/other:1", amd); err != nil {
		t.Fatal(err)
	}
	if n := next.calls.Load(); n != 3 {
		t.Errorf("calls = %d, want 3", n)
	}
}

func TestResolveOnceRetriesFailures(t *testing.T) {
	t.Parallel()
	next := &countingBackend{release: make(chan struct{})}
	close(next.release)
	next.fail.Store(true)
	r := newResolveOnce(next)
	ctx := context.Background()
	if _, err := r.Resolve(ctx, "reg/base:1", llb.Platform{}); err == nil {
		t.Fatal("no error from a failing registry")
	}
	next.fail.Store(false)
	if _, err := r.Resolve(ctx, "reg/base:1", llb.Platform{}); err != nil {
		t.Fatalf("a failure was kept: %v", err)
	}
	if n := next.calls.Load(); n != 2 {
		t.Errorf("calls = %d, want 2", n)
	}
}

// TestResolveOnceSharesFailures: the callers waiting for a resolution that
// fails get its error instead of asking again (a stalled registry is
// waited for once); a caller that gives up does not fail the others.
func TestResolveOnceSharesFailures(t *testing.T) {
	t.Parallel()
	next := &countingBackend{release: make(chan struct{})}
	next.fail.Store(true)
	r := newResolveOnce(next)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = r.Resolve(ctx, "reg/base:1", llb.Platform{})
		}()
	}
	for next.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the others are waiting now
	close(next.release)
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			t.Error("a waiter got no error")
		}
	}
	if n := next.calls.Load(); n != 1 {
		t.Errorf("a failing registry was asked %d times, want 1", n)
	}

	// The owner gives up: a waiter that did not asks again and succeeds.
	next2 := &countingBackend{release: make(chan struct{})}
	r2 := newResolveOnce(next2)
	gone, cancel := context.WithCancel(ctx)
	ownerDone := make(chan error, 1)
	go func() {
		_, err := r2.Resolve(gone, "reg/base:1", llb.Platform{})
		ownerDone <- err
	}()
	for next2.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	waiterDone := make(chan error, 1)
	go func() {
		_, err := r2.Resolve(ctx, "reg/base:1", llb.Platform{})
		waiterDone <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	close(next2.release) // the owner's call returns; its ctx is done
	if err := <-ownerDone; !errors.Is(err, context.Canceled) {
		t.Errorf("the owner got %v, want its cancellation", err)
	}
	if err := <-waiterDone; err != nil {
		t.Errorf("the waiter failed with the owner's cancellation: %v", err)
	}
	if n := next2.calls.Load(); n != 2 {
		t.Errorf("calls = %d, want 2 (the waiter asked again)", n)
	}
}

// TestResolveCallWaitPrefersAnswer: a caller whose context is cancelled
// when the resolution it waits for is already over gets the resolution's
// answer (its failure, shared) rather than its own cancellation.
func TestResolveCallWaitPrefersAnswer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &resolveCall{ready: make(chan struct{}), err: errors.New("registry down")}
	if err := c.wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting for an unfinished call with a cancelled context: %v", err)
	}
	close(c.ready)
	for range 100 {
		if err := c.wait(ctx); err != nil {
			t.Fatalf("waiting for a finished call with a cancelled context: %v, want its answer", err)
		}
	}
}
