package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/cmd/builder/internal/progressui"
	imagestore "github.com/builderdev/builder/exporter/imagestore"
	"github.com/builderdev/builder/state"
	"github.com/spf13/cobra"
)

// Shell completion (builder completion bash|zsh|fish|powershell, cobra's
// command) of image names, --target stages and --progress values.

// completeImages completes image names (short form, as builder images
// shows them) from the store of the command's --root, for the first
// argument only unless every argument is an image.
func completeImages(everyArg bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 && !everyArg {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return imageNames(rootOf(cmd), toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// rootOf is the --root the command line gave (or its default).
func rootOf(cmd *cobra.Command) string {
	if f := cmd.Flags().Lookup("root"); f != nil {
		return f.Value.String()
	}
	return state.DefaultDir()
}

// imageNames lists the names in the store under root that start with
// prefix; it creates nothing (a missing root has no images).
func imageNames(root, prefix string) []cobra.Completion {
	if _, err := os.Stat(filepath.Join(root, "images")); err != nil {
		return nil
	}
	r, err := state.Open(root, state.Options{MustExist: true})
	if err != nil {
		return nil
	}
	defer r.Close()
	var s *imagestore.Store
	if s, err = r.Images(); err != nil {
		return nil
	}
	names, _ := s.FamiliarNames(prefix) // nil on error
	return names
}

// completeTargets completes --target with the named stages of the
// Dockerfile the command line points at (-f, or PATH/Dockerfile).
func completeTargets(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	df, _ := cmd.Flags().GetString("file")
	if df == "" {
		ctx := "."
		if len(args) > 0 {
			ctx = args[0]
		}
		df = filepath.Join(ctx, "Dockerfile")
	}
	targets, err := build.Targets(context.Background(), df)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, t := range targets {
		if t.Name != "" && strings.HasPrefix(t.Name, toComplete) {
			out = append(out, cobra.CompletionWithDesc(t.Name, t.Description))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// addCompletions registers the completions on the commands of root.
func addCompletions(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() == "image" {
			addCompletions(c) // builder image ls, rm, ...
		}
		name := c.Name()
		if name == "rm" && root.Name() == "image" {
			name = "rmi" // builder rm removes containers
		}
		switch name {
		case "run", "push", "tag", "history":
			c.ValidArgsFunction = completeImages(false)
		case "rmi", "inspect", "save":
			c.ValidArgsFunction = completeImages(true)
		case "build":
			_ = c.RegisterFlagCompletionFunc("target", completeTargets)
		}
		if c.Flags().Lookup("progress") != nil {
			_ = c.RegisterFlagCompletionFunc("progress", completeProgress)
		}
	}
}

// completeProgress completes --progress.
func completeProgress(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	for _, m := range progressui.Modes {
		if strings.HasPrefix(m, toComplete) {
			out = append(out, m)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
