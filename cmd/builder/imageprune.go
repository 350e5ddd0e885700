package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/builderdev/builder/exporter"
	"github.com/builderdev/builder/prune"
	"github.com/builderdev/builder/state"
	"github.com/spf13/cobra"
)

// newImageCommand is `builder image`, docker's management command: for
// now its prune (the other image commands are top-level).
func newImageCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images"}
	var root string
	var all, force bool
	prune := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return pruneImages(root, all, force, os.Stdin, cmd.OutOrStdout())
		},
	}
	rootFlag(prune, &root)
	prune.Flags().BoolVarP(&all, "all", "a", false, "Remove all images not used by a container, not just dangling ones")
	prune.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.AddCommand(prune)
	// docker image ls, rm, ... are docker images, rmi, ...
	cmd.AddCommand(
		renamed(newImagesCommand(), "ls", "list"),
		renamed(newRmiCommand(), "rm", "rmi", "remove"),
		newInspectCommand(), newHistoryCommand(), newTagCommand(), newSaveCommand(), newPushCommand(), newBuildCommand())
	return cmd
}

// renamed gives cmd the name it has under builder image (the first word
// of its Use) and aliases.
func renamed(cmd *cobra.Command, name string, aliases ...string) *cobra.Command {
	_, rest, _ := strings.Cut(cmd.Use, " ")
	cmd.Use = strings.TrimSpace(name + " " + rest)
	cmd.Aliases = aliases
	return cmd
}

// pruneImages is builder image prune: it asks first unless force, as
// docker, and prints what it removed.
func pruneImages(dir string, all, force bool, in io.Reader, out io.Writer) error {
	if !force {
		warning := "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
		if all {
			warning = "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] "
		}
		if ok, err := confirm(in, out, warning, "builder image prune: not a terminal to confirm on: use --force (-f) to remove images without a prompt"); !ok {
			return err
		}
	}
	root, err := state.Open(dir, state.Options{})
	if err != nil {
		return err
	}
	defer root.Close()
	removed, err := prune.Images(root, all)
	if len(removed) > 0 {
		fmt.Fprintln(out, "Deleted Images:")
		for _, r := range removed {
			for _, n := range r.Untagged {
				fmt.Fprintf(out, "untagged: %s\n", exporter.FamiliarName(n))
			}
			if r.Deleted != "" {
				fmt.Fprintf(out, "deleted: %s\n", r.Deleted)
			}
		}
		fmt.Fprintln(out)
	}
	if err != nil {
		return err
	}
	// The layers are blobs the build cache shares: they leave the disk
	// with builder prune, when no cache record needs them either.
	fmt.Fprintln(out, "Total reclaimed space: 0B (the layers stay in the build cache until builder prune)")
	return nil
}
