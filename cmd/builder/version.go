package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"text/tabwriter"

	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/internal/buildinfo"
	"github.com/builderdev/builder/snapshot"
	"github.com/spf13/cobra"
)

// version and commit are set at link time (-ldflags "-X main.version=v1.2.3
// -X main.commit=abc123", as the Makefile does); else they come from the
// build info the go command records (module version, vcs.revision).
var version, commit = "", ""

// shortVersion is what builder --version prints, as docker --version:
// "builder version V, build COMMIT".
func shortVersion() string {
	ver, rev, _ := buildinfo.Version(version, commit)
	return fmt.Sprintf("%s, build %s", ver, rev)
}

func newVersionCommand() *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the builder version and what it detected on this machine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return printVersion(cmd.OutOrStdout(), root)
		},
	}
	rootFlag(cmd, &root)
	return cmd
}

// printVersion prints the version, build and the detected snapshotter and
// cgroup mode for root, as docker version prints its client and server.
func printVersion(w io.Writer, root string) error {
	ver, rev, when := buildinfo.Version(version, commit)
	snap, chosen, err := snapshot.Which(filepath.Join(root, "snapshots"))
	switch {
	case err != nil:
		snap = fmt.Sprintf("unknown (%v)", err)
	case chosen:
		snap = fmt.Sprintf("%s (state in %s)", snap, root)
	default:
		snap = fmt.Sprintf("%s (available; %s is not used yet)", snap, root)
	}
	user := "root"
	if executor.Rootless() || os.Geteuid() != 0 {
		user = "rootless (user namespace)"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "Version:\t%s\n", ver)
	fmt.Fprintf(tw, "Commit:\t%s\n", rev)
	if when != "" {
		fmt.Fprintf(tw, "Built:\t%s\n", when)
	}
	fmt.Fprintf(tw, "Go version:\t%s\n", runtime.Version())
	fmt.Fprintf(tw, "OS/Arch:\t%s/%s\n", runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(tw, "Mode:\t%s\n", user)
	fmt.Fprintf(tw, "Snapshotter:\t%s\n", snap)
	fmt.Fprintf(tw, "Cgroups:\t%s\n", executor.CgroupMode())
	return tw.Flush()
}
