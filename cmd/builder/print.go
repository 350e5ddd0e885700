package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/builderdev/builder/frontend/dockerfile"
	"github.com/spf13/cobra"
)

// callMethods are the values of --call (buildx) and --print.
var callMethods = map[string]bool{"build": true, "check": true, "outline": true, "targets": true}

// printTargets prints the stages as `docker buildx build --call targets`.
func printTargets(w io.Writer, targets []dockerfile.Target) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tDESCRIPTION")
	for _, t := range targets {
		name := t.Name
		if t.Default {
			if name == "" {
				name = "(default)"
			} else {
				name += " (default)"
			}
		}
		if name == "" {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\n", name, t.Description)
	}
	return tw.Flush()
}

// printOutline prints the target's outline as `docker buildx build --call
// outline`: the target, its build args, secrets and ssh ids.
func printOutline(w io.Writer, o *dockerfile.Outline) error {
	if o.Name != "" || o.Description != "" {
		tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
		name := o.Name
		if name == "" {
			name = "(default)"
		}
		fmt.Fprintf(tw, "TARGET:\t%s\n", name)
		if o.Description != "" {
			fmt.Fprintf(tw, "DESCRIPTION:\t%s\n", o.Description)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	if len(o.Args) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, "BUILD ARG\tVALUE\tDESCRIPTION")
		for _, a := range o.Args {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Name, a.Value, a.Description)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	for _, sec := range []struct {
		title string
		list  []dockerfile.OutlineMount
	}{{"SECRET", o.Secrets}, {"SSH", o.SSH}} {
		if len(sec.list) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		fmt.Fprintf(tw, "%s\tREQUIRED\n", sec.title)
		for _, m := range sec.list {
			req := ""
			if m.Required {
				req = "true"
			}
			fmt.Fprintf(tw, "%s\t%s\n", m.ID, req)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return nil
}

// runCall serves --call targets|outline: it parses the Dockerfile and
// prints, building nothing.
func runCall(o BuildOptions, dfPath string, df []byte, out io.Writer) error {
	opt := dockerfile.Options{Dockerfile: df, Filename: filepath.Base(dfPath), BuildArgs: o.BuildArgs, Target: o.Target}
	switch o.Call {
	case "targets":
		t, err := dockerfile.ListTargets(opt)
		if err != nil {
			return err
		}
		return printTargets(o.stdout(), t)
	case "outline":
		ol, err := dockerfile.MakeOutline(opt)
		if err != nil {
			return err
		}
		return printOutline(o.stdout(), ol)
	}
	return fmt.Errorf("--call %q: unknown method", o.Call)
}

// callFlag settles --call/--print and --check.
func callFlag(cmd *cobra.Command, call string, check bool) (string, error) {
	if check {
		if cmd.Flags().Changed("call") || cmd.Flags().Changed("print") {
			if call != "check" {
				return "", fmt.Errorf("--check conflicts with --call=%s", call)
			}
		}
		call = "check"
	}
	if !callMethods[call] {
		return "", fmt.Errorf("--call %q: unknown method (build, check, outline, targets)", call)
	}
	return call, nil
}

func (o BuildOptions) stdout() io.Writer {
	if o.Stdout != nil {
		return o.Stdout
	}
	return os.Stdout
}

// sourceDateEpochFromEnv passes SOURCE_DATE_EPOCH from the environment
// as a build arg, as buildx does, unless --build-arg sets it.
func sourceDateEpochFromEnv(args map[string]string) {
	if _, ok := args["SOURCE_DATE_EPOCH"]; ok {
		return
	}
	if v, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); ok && v != "" {
		args["SOURCE_DATE_EPOCH"] = v
	}
}
