package interrupt

import (
	"context"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// Context returns a context cancelled by the first SIGINT or
// SIGTERM, and a function that says which one came (0 for none). A
// second signal ends the process at once with the default action, should
// the clean shutdown hang: whatever it leaves (mounts, temp files) the
// next start recovers, as after kill -9.
func Context() (context.Context, func() syscall.Signal, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	var got atomic.Int32
	go func() {
		select {
		case s := <-ch:
			got.Store(int32(s.(syscall.Signal)))
			cancel()
		case <-ctx.Done():
			return
		}
		s := <-ch
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		_ = syscall.Kill(os.Getpid(), s.(syscall.Signal))
	}()
	stop := func() {
		signal.Stop(ch)
		cancel()
	}
	return ctx, func() syscall.Signal { return syscall.Signal(got.Load()) }, stop
}
