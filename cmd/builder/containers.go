package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/builderdev/builder/internal/containers"
	"github.com/builderdev/builder/run"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

func newPsCommand() *cobra.Command {
	var root string
	var all, quiet, noTrunc bool
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rows, err := run.List(root)
			if err != nil {
				return err
			}
			return printPs(cmd.OutOrStdout(), rows, all, quiet, noTrunc, time.Now())
		},
	}
	rootFlag(cmd, &root)
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	return cmd
}

type psRow = run.Listed

// status is docker ps's STATUS column. A record left "running" or
// "created" by a builder process that died is shown as Dead.
func psStatus(r psRow, now time.Time) string {
	c := r.Container
	switch {
	case r.Running && c.State == containers.Running:
		return "Up " + units.HumanDuration(now.Sub(c.StartedAt))
	case r.Running:
		return "Created"
	case c.State == containers.Exited:
		return fmt.Sprintf("Exited (%d) %s", c.ExitCode, humanAgo(now, c.FinishedAt))
	}
	return "Dead"
}

func printPs(w io.Writer, rows []psRow, all, quiet, noTrunc bool, now time.Time) error {
	id := func(c *containers.Container) string {
		if noTrunc {
			return c.ID
		}
		return c.ID[:12]
	}
	var shown []psRow
	for _, r := range rows {
		if all || (r.Running && r.Container.State == containers.Running) {
			shown = append(shown, r)
		}
	}
	if quiet {
		for _, r := range shown {
			fmt.Fprintln(w, id(r.Container))
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
	for _, r := range shown {
		command := strings.Join(r.Container.Command, " ")
		if !noTrunc {
			command = ellipsis(command, 20)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\t%s\n", id(r.Container), r.Container.Image, strconv.Quote(command), humanAgo(now, r.Container.Created), psStatus(r, now), r.Container.Name)
	}
	return tw.Flush()
}

// ellipsis shortens s to n runes, ending with "…" when cut (docker ps).
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// rmWait bounds how long `builder rm -f` waits for a running container.
const rmWait = 30 * time.Second

func newRmCommand() *cobra.Command {
	var root string
	var force bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return RemoveContainers(cmd.Context(), root, args, force, cmd.OutOrStdout())
		},
	}
	rootFlag(cmd, &root)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of a running container (stops its builder process with SIGTERM)")
	return cmd
}

// RemoveContainers removes the containers refs (IDs, ID prefixes or
// names) and their filesystems, printing each ref removed to out as
// docker rm does. Errors of all refs are joined.
func RemoveContainers(ctx context.Context, dir string, refs []string, force bool, out io.Writer) error {
	return run.Remove(ctx, dir, refs, force, rmWait, func(ref string) { fmt.Fprintln(out, ref) })
}
