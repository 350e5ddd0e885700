package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/builderdev/builder/executor"
	"github.com/spf13/cobra"
)

func main() {
	// The binary doubles as the sandbox's init process.
	executor.MaybeInit()
	// Started by a non-root user: continue as root of a user namespace.
	executor.MaybeUnshare()

	ctx, caught, stop := signalContext()
	defer stop()
	root := newRootCommand()
	err := root.ExecuteContext(ctx)
	if err != nil {
		var ee *exitError
		switch {
		case caught() != 0:
			// As docker: 128+signal (130 after Ctrl-C), whatever the
			// command was doing when it was interrupted.
			if !errors.As(err, &ee) && !errors.Is(err, context.Canceled) {
				fmt.Fprintf(os.Stderr, "ERROR: %v\n", err)
			}
			os.Exit(128 + int(caught()))
		case errors.As(err, &ee):
			os.Exit(ee.code)
		}
		fmt.Fprintf(os.Stderr, "ERROR: %v\n", err)
		os.Exit(1)
	}
}

// signalContext returns a context cancelled by the first SIGINT or
// SIGTERM, and a function that says which one came (0 for none). A
// second signal ends the process at once with the default action, should
// the clean shutdown hang: whatever it leaves (mounts, temp files) the
// next start recovers, as after kill -9.
func signalContext() (context.Context, func() syscall.Signal, func()) {
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

// newRootCommand is builder with every subcommand and its completions.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "builder",
		Short:         "Build container images from Dockerfiles, without a daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       shortVersion(),
	}
	root.SetVersionTemplate("builder version {{.Version}}\n")
	root.AddCommand(newBuildCommand())
	root.AddCommand(newImagesCommand(), newHistoryCommand(), newInspectCommand(), newTagCommand(), newRmiCommand(), newSaveCommand(), newImageCommand())
	root.AddCommand(newRunCommand(), newPsCommand(), newRmCommand())
	root.AddCommand(newPushCommand(), newLoginCommand(), newLogoutCommand())
	root.AddCommand(newPruneCommand(), newDUCommand(), newVersionCommand(), newReportCommand())
	addCompletions(root)
	return root
}

// exitError ends the process with code after its message was printed.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
