package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/prune"
	"github.com/builderdev/builder/state"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// PruneOptions are the flags of builder prune (docker builder prune).
type PruneOptions struct {
	Root        string
	All         bool
	Force       bool
	Filters     []string
	KeepStorage string
}

func newPruneCommand() *cobra.Command {
	var o PruneOptions
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove build cache",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return Prune(cmd.Context(), o, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.All, "all", "a", false, "Remove all unused build cache, not just dangling ones")
	f.BoolVarP(&o.Force, "force", "f", false, "Do not prompt for confirmation")
	f.StringArrayVar(&o.Filters, "filter", nil, `Provide filter values (e.g. "until=24h")`)
	f.StringVar(&o.KeepStorage, "keep-storage", "", "Amount of disk space to keep for cache")
	rootFlag(cmd, &o.Root)
	return cmd
}

// Prune removes build cache under o.Root as docker builder prune: without
// --all the dangling cache (see ops.PruneOptions), with --all everything
// but what the stored images and the containers use. It asks first unless
// --force; without a terminal to ask on it refuses.
func Prune(ctx context.Context, o PruneOptions, in io.Reader, out io.Writer) error {
	until, err := prune.ParseFilters(o.Filters)
	if err != nil {
		return err
	}
	var keep int64
	if o.KeepStorage != "" {
		if keep, err = build.ParseSize(o.KeepStorage); err != nil {
			return fmt.Errorf("invalid --keep-storage %q: %w", o.KeepStorage, err)
		}
	}
	if !o.Force {
		warning := "WARNING! This will remove all dangling build cache. Are you sure you want to continue? [y/N] "
		if o.All {
			warning = "WARNING! This will remove all build cache. Are you sure you want to continue? [y/N] "
		}
		if ok, err := confirm(in, out, warning, "builder prune: not a terminal to confirm on: use --force (-f) to remove build cache without a prompt"); !ok {
			return err
		}
	}
	// Nothing runs while prune holds the root exclusively.
	root, err := state.Open(o.Root, state.Options{Lock: state.LockExclusive, NoWait: true, MustExist: true})
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintln(out, "Total reclaimed space: 0B")
		return nil
	}
	if errors.Is(err, state.ErrBusy) {
		return fmt.Errorf("builder prune: %w: a build, run or rm is using it; try again when it has finished", err)
	}
	if err != nil {
		return err
	}
	defer root.Close()

	rep, err := prune.Cache(ctx, root, prune.CacheOptions{All: o.All, Until: until, KeepStorage: keep})
	for _, im := range rep.Damaged {
		fmt.Fprintf(out, "Removed damaged image %s (%s): %s\n", strings.Join(im.Names, ", "), im.ID.Encoded()[:12], im.Damaged)
	}
	if len(rep.Results) > 0 {
		fmt.Fprintln(out, "Deleted build cache objects:")
		for _, id := range rep.Results {
			fmt.Fprintln(out, id)
		}
		fmt.Fprintln(out)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Total reclaimed space: %s\n", units.HumanSize(float64(rep.Reclaimed)))
	return nil
}

// confirm asks warning on out and reads the answer from in, a terminal
// (refusing with the error refusal when it is not): true for y or yes.
func confirm(in io.Reader, out io.Writer, warning, refusal string) (bool, error) {
	if !isTerminal(in) {
		return false, errors.New(refusal)
	}
	fmt.Fprint(out, warning)
	answer, _ := bufio.NewReader(in).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(answer))
	return a == "y" || a == "yes", nil
}
