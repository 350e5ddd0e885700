package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/internal/interrupt"
	"github.com/spf13/cobra"
)

func main() {
	// The binary doubles as the sandbox's init process.
	executor.MaybeInit()
	// Started by a non-root user: continue as root of a user namespace.
	executor.MaybeUnshare()

	ctx, caught, stop := interrupt.Context()
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
