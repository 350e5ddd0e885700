package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"text/tabwriter"
	"time"

	"github.com/builderdev/builder/prune"
	"github.com/builderdev/builder/solver/ops"
	"github.com/builderdev/builder/state"
	digest "github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
)

// DUOptions are the flags of builder du (docker buildx du).
type DUOptions struct {
	Root    string
	Verbose bool
	Verify  bool
}

func newDUCommand() *cobra.Command {
	var o DUOptions
	cmd := &cobra.Command{
		Use:   "du",
		Short: "Disk usage of the build cache, by kind",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return DU(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Verbose, "verbose", false, "List every item")
	f.BoolVar(&o.Verify, "verify", false, "Re-hash every blob; fail naming the corrupt ones (which are removed)")
	rootFlag(cmd, &o.Root)
	return cmd
}

// DU prints what takes space under o.Root, by kind, and how much builder
// prune -a would free; with --verify it first re-hashes every blob and
// fails naming the corrupt ones.
func DU(ctx context.Context, o DUOptions, out io.Writer) error {
	root, err := state.Open(o.Root, state.Options{Lock: state.LockShared, MustExist: true})
	if errors.Is(err, fs.ErrNotExist) {
		return printUsage(out, &ops.UsageReport{}, o.Verbose, time.Now())
	}
	if err != nil {
		return err
	}
	defer root.Close()
	var corrupt []digest.Digest
	if o.Verify {
		n, bad, err := prune.Verify(root)
		if err != nil {
			return err
		}
		corrupt = bad
		fmt.Fprintf(out, "Verified %d blobs: %d corrupt\n", n, len(corrupt))
	}
	rep, err := prune.Usage(ctx, root)
	if err != nil {
		return err
	}
	if err := printUsage(out, rep, o.Verbose, time.Now()); err != nil {
		return err
	}
	if len(corrupt) > 0 {
		for _, d := range corrupt {
			fmt.Fprintf(out, "ERROR: blob %s is corrupt (its content does not match its digest): removed; the next build fetches or rebuilds it\n", d)
		}
		return &exitError{code: 1}
	}
	return nil
}

// printUsage prints the items (verbose) and a table by kind, as docker
// system df does.
func printUsage(w io.Writer, rep *ops.UsageReport, verbose bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	if verbose {
		fmt.Fprintln(tw, "ID\tTYPE\tSIZE\tRECLAIMABLE\tLAST USED")
		for _, it := range rep.Items {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", it.ID, it.Kind, humanSize(it.Size), it.Reclaimable, humanAgo(now, it.LastUsed))
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintln(tw, "TYPE\tCOUNT\tSIZE\tRECLAIMABLE")
	for _, k := range ops.UsageKinds {
		n, size, rec := rep.Totals(k)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", k, n, humanSize(size), humanSize(rec))
	}
	n, size, rec := rep.Totals("")
	fmt.Fprintf(tw, "Total\t%d\t%s\t%s\n", n, humanSize(size), humanSize(rec))
	return tw.Flush()
}
