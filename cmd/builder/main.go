package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/builderdev/builder/executor"
	"github.com/spf13/cobra"
)

func main() {
	// The binary doubles as the sandbox's init process.
	executor.MaybeInit()
	// Started by a non-root user: continue as root of a user namespace.
	executor.MaybeUnshare()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:           "builder",
		Short:         "Build container images from Dockerfiles, without a daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newBuildCommand())
	root.AddCommand(newImagesCommand(), newInspectCommand(), newTagCommand(), newRmiCommand(), newSaveCommand())
	root.AddCommand(newRunCommand(), newPsCommand(), newRmCommand())
	root.AddCommand(newPushCommand(), newLoginCommand(), newLogoutCommand())
	root.AddCommand(newPruneCommand())
	err := root.ExecuteContext(ctx)
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintf(os.Stderr, "ERROR: %v\n", err)
		os.Exit(1)
	}
}

// exitError ends the process with code after its message was printed.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
