package snapshot

import (
	"context"
	"errors"
	"io"
)

var errUsageUnknown = errors.New("the snapshotter does not report usage")

// Later returns a Snapshotter opened by open, which starts now in the
// background: every call waits for it (or for its context) and then goes
// to what open returned, or fails with its error. Close waits too, and
// closes it.
func Later(open func() (Snapshotter, error)) Snapshotter {
	l := &later{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.sn, l.err = open()
	}()
	return l
}

type later struct {
	done chan struct{}
	sn   Snapshotter
	err  error
}

func (l *later) get(ctx context.Context) (Snapshotter, error) {
	select {
	case <-l.done:
		return l.sn, l.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *later) Prepare(ctx context.Context, key, parent string) ([]Mount, error) {
	sn, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return sn.Prepare(ctx, key, parent)
}

func (l *later) View(ctx context.Context, key, parent string) ([]Mount, error) {
	sn, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return sn.View(ctx, key, parent)
}

func (l *later) Mounts(ctx context.Context, key string) ([]Mount, error) {
	sn, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return sn.Mounts(ctx, key)
}

func (l *later) Commit(ctx context.Context, name, key string) error {
	sn, err := l.get(ctx)
	if err != nil {
		return err
	}
	return sn.Commit(ctx, name, key)
}

func (l *later) Remove(ctx context.Context, key string) error {
	sn, err := l.get(ctx)
	if err != nil {
		return err
	}
	return sn.Remove(ctx, key)
}

func (l *later) Stat(ctx context.Context, key string) (Info, error) {
	sn, err := l.get(ctx)
	if err != nil {
		return Info{}, err
	}
	return sn.Stat(ctx, key)
}

func (l *later) Walk(ctx context.Context, fn func(Info) error) error {
	sn, err := l.get(ctx)
	if err != nil {
		return err
	}
	return sn.Walk(ctx, fn)
}

func (l *later) Diff(ctx context.Context, name string, w io.Writer) error {
	sn, err := l.get(ctx)
	if err != nil {
		return err
	}
	return sn.Diff(ctx, name, w)
}

func (l *later) Apply(ctx context.Context, key string, r io.Reader) error {
	sn, err := l.get(ctx)
	if err != nil {
		return err
	}
	return sn.Apply(ctx, key, r)
}

// Usage is the snapshotter's Usage, when it has one (the store's).
func (l *later) Usage(ctx context.Context, key string) (int64, error) {
	sn, err := l.get(ctx)
	if err != nil {
		return 0, err
	}
	u, ok := sn.(interface {
		Usage(context.Context, string) (int64, error)
	})
	if !ok {
		return 0, errUsageUnknown
	}
	return u.Usage(ctx, key)
}

// WaitOpened returns once a snapshotter from Later has finished opening
// (at once for any other): whoever owns what open returned may then close
// it without racing the opening.
func WaitOpened(sn Snapshotter) {
	if l, ok := sn.(*later); ok {
		<-l.done
	}
}

func (l *later) Close() error {
	<-l.done
	if l.err != nil {
		return nil
	}
	return l.sn.Close()
}
