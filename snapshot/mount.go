package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/builderdev/builder/internal/fsutil"
)

// WithMounts mounts each set of mounts (as returned by Prepare, View or
// Mounts) on its own temporary directory and calls fn with those
// directories, in order.
//
// Everything happens in a private mount namespace owned by one locked OS
// thread: WithMounts starts a goroutine, locks it to its thread, unshares
// the mount namespace and the fs attributes (CLONE_NEWNS|CLONE_FS), makes /
// recursively private, mounts, runs fn, and unmounts. The thread is never
// unlocked, so it exits with the goroutine and the namespace dies with it:
// no mount ever shows in the host's mount table, even if the process is
// killed in the middle.
//
// fn runs on that goroutine. It must do all its path work there: other
// goroutines run on other threads, which do not see the mounts. A panic in
// fn is re-raised in the caller. A set that is a single read-write bind
// mount is not mounted at all: its root is the bind source.
func WithMounts(ctx context.Context, sets [][]Mount, fn func(roots []string) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	type result struct {
		err   error
		panic any
		ok    bool
	}
	done := make(chan result, 1)
	finished := make(chan struct{})
	var run func()
	run = func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread is never terminated, only parked, and
			// /proc/self shows its view: keep it out of the namespace by
			// holding it here while another thread does the work.
			go run()
			<-finished
			runtime.UnlockOSThread()
			return
		}
		// No UnlockOSThread: this thread's namespace must not be reused.
		res := result{}
		defer func() {
			if !res.ok {
				res.panic = recover()
			}
			done <- res
			close(finished)
		}()
		res.err = withMountsLocked(sets, fn)
		res.ok = true
	}
	go run()
	res := <-done
	if !res.ok {
		if res.panic == nil {
			return errors.New("WithMounts: fn exited its goroutine (runtime.Goexit, e.g. t.FailNow inside fn)")
		}
		panic(res.panic)
	}
	return res.err
}

func withMountsLocked(sets [][]Mount, fn func(roots []string) error) (retErr error) {
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
		return fmt.Errorf("unsharing mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private in the mount namespace: %w", err)
	}
	roots := make([]string, len(sets))
	var tmp string
	var mounted []string
	defer func() {
		for i := len(mounted) - 1; i >= 0; i-- {
			if err := unix.Unmount(mounted[i], unix.MNT_DETACH); err != nil && retErr == nil {
				retErr = fmt.Errorf("unmounting %s: %w", mounted[i], err)
			}
		}
		if tmp != "" {
			if err := os.RemoveAll(tmp); err != nil && retErr == nil {
				retErr = err
			}
		}
	}()
	for i, set := range sets {
		if len(set) == 1 && set[0].Type == "bind" && !slices.Contains(set[0].Options, "ro") {
			roots[i] = set[0].Source
			continue
		}
		if tmp == "" {
			var err error
			if tmp, err = os.MkdirTemp("", "snapshot-mounts-"); err != nil {
				return err
			}
		}
		target := filepath.Join(tmp, fmt.Sprint(i))
		if err := os.Mkdir(target, 0o755); err != nil {
			return err
		}
		for _, m := range set {
			if err := mountOne(m, target); err != nil {
				return err
			}
			mounted = append(mounted, target)
		}
		roots[i] = target
	}
	return fn(roots)
}

func mountOne(m Mount, target string) error {
	flags, _, opt := fsutil.ParseMountOptions(m.Options)
	typ := m.Type
	if typ == "bind" || typ == "rbind" {
		flags |= unix.MS_BIND
		if typ == "rbind" {
			flags |= unix.MS_REC
		}
		if err := unix.Mount(m.Source, target, "", flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
			return fmt.Errorf("bind mounting %s on %s: %w", m.Source, target, err)
		}
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
			if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|rest, ""); err != nil {
				unix.Unmount(target, unix.MNT_DETACH)
				return fmt.Errorf("remounting bind %s on %s: %w", m.Source, target, err)
			}
		}
		return nil
	}
	if err := fsutil.Mount(m.Source, target, typ, flags, opt); err != nil {
		return fmt.Errorf("mounting %s (%s) on %s: %w", typ, m.Source, target, err)
	}
	return nil
}
