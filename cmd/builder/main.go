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
			if ee.msg != "" {
				fmt.Fprintf(os.Stderr, "ERROR: %s\n", ee.msg)
			}
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
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(newBuildCommand())
	root.AddCommand(newImagesCommand(), newHistoryCommand(), newInspectCommand(), newTagCommand(), newRmiCommand(), newSaveCommand(), newImageCommand())
	root.AddCommand(newRunCommand(), newPsCommand(), newRmCommand())
	root.AddCommand(newPushCommand(), newLoginCommand(), newLogoutCommand())
	root.AddCommand(newPruneCommand(), newDUCommand(), newVersionCommand(), newReportCommand())
	addCompletions(root)
	return root
}

// exitError ends the process with code, printing msg first when set
// (otherwise the message was printed already).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return fmt.Sprintf("exit status %d", e.code)
}

// flagError is every command's answer to a flag it cannot parse: docker's
// message and its exit code, 125.
func flagError(cmd *cobra.Command, err error) error {
	return &exitError{code: 125, msg: fmt.Sprintf("%v\nSee '%s --help'.", err, cmd.CommandPath())}
}
