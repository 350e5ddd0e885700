package snapshot

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLater(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	release := make(chan struct{})
	sn := Later(func() (Snapshotter, error) {
		<-release
		return NewNamed(t.TempDir(), "native")
	})
	// A call made while it opens waits for it, or for its context.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := sn.Prepare(short, "a", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Prepare during the opening: %v, want the context's deadline", err)
	}
	close(release)
	WaitOpened(sn)
	if _, err := sn.Prepare(ctx, "a", ""); err != nil {
		t.Fatal(err)
	}
	if err := sn.Commit(ctx, "b", "a"); err != nil {
		t.Fatal(err)
	}
	if n, err := sn.(interface {
		Usage(context.Context, string) (int64, error)
	}).Usage(ctx, "b"); err != nil || n < 0 {
		t.Errorf("Usage = %d, %v", n, err)
	}
	if err := sn.Close(); err != nil {
		t.Fatal(err)
	}

	boom := errors.New("no overlay")
	bad := Later(func() (Snapshotter, error) { return nil, boom })
	if _, err := bad.Stat(ctx, "x"); !errors.Is(err, boom) {
		t.Errorf("Stat after a failed opening: %v, want its error", err)
	}
	if err := bad.Close(); err != nil {
		t.Errorf("Close after a failed opening: %v", err)
	}
}
