package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/cmd/builder/internal/progressui"
	"github.com/builderdev/builder/exporter"
	"github.com/builderdev/builder/registry"
	"github.com/builderdev/builder/state"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// RegistryFlags are the registry connection flags of build, push and
// login.
type RegistryFlags struct {
	// CAFiles are --tls-ca: PEM CA certificates trusted besides the
	// system's.
	CAFiles []string
	// Insecure are --insecure-registry HOST[:PORT]s spoken to over plain
	// HTTP (loopback registries always are).
	Insecure []string
	// StallTimeout is --registry-timeout: how long a registry
	// connection may make no progress (0: BUILDER_REGISTRY_TIMEOUT or
	// the default).
	StallTimeout time.Duration
}

func (f *RegistryFlags) add(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.CAFiles, "tls-ca", nil, "Trust the CA certificates in this PEM file for registries (besides the system's)")
	fs.StringArrayVar(&f.Insecure, "insecure-registry", nil, "Allow plain HTTP to this registry HOST[:PORT]")
	fs.DurationVar(&f.StallTimeout, "registry-timeout", 0, "Fail a registry request after this long without progress, retried once (default $"+registry.EnvStallTimeout+" or "+registry.DefaultTimeouts.Stall.String()+")")
}

// options returns the registry client options of the flags, keeping the
// client's state (tag records, blob sources) under root.
func (f RegistryFlags) options(root *state.Root, blobs *cache.BlobStore) registry.Options {
	o := registry.Options{Blobs: blobs, CAFiles: f.CAFiles, Insecure: f.Insecure}
	o.Timeouts.Stall = f.StallTimeout
	if root != nil {
		o.StateDir = root.RegistryDir()
	}
	return o
}

// newPushCommand is `builder push NAME[:TAG] [DEST...]`: push an image of
// the local store to its name, or to the DEST names.
func newPushCommand() *cobra.Command {
	var (
		root     string
		progress string
		flags    RegistryFlags
	)
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG] [DEST...]",
		Short: "Upload an image from the local store to a registry",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return Push(cmd.Context(), root, progress, flags, args[0], args[1:], os.Stderr, os.Stdout)
		},
	}
	f := cmd.Flags()
	rootFlag(cmd, &root)
	f.StringVar(&progress, "progress", defaultProgress(), progressHelp)
	flags.add(f)
	return cmd
}

// Push pushes the stored image src to dests (its own name when none),
// showing progress on out and printing "DEST: digest: sha256:... size: N"
// on stdout for every destination, as docker push prints its result.
func Push(ctx context.Context, dir, progress string, flags RegistryFlags, src string, dests []string, out, stdout io.Writer) error {
	for _, d := range dests {
		if err := exporter.ValidateName(d); err != nil {
			return fmt.Errorf("push destination %q: %w", d, err)
		}
	}
	root, err := state.Open(dir, state.Options{})
	if err != nil {
		return err
	}
	defer root.Close()
	images, err := root.Images()
	if err != nil {
		return err
	}
	vimg, dests, err := build.StoredImage(images, src, dests)
	if err != nil {
		return err
	}
	reg := registry.New(flags.options(root, images.Blobs()))
	lazyBlobs(root, images.Blobs(), reg)
	display, err := progressui.New(out, progress)
	if err != nil {
		return err
	}
	desc, err := build.Push(ctx, reg, display, vimg, dests)
	display.Close()
	if err != nil {
		return err
	}
	for _, d := range dests {
		fmt.Fprintf(stdout, "%s: digest: %s size: %d\n", d, desc.Digest, desc.Size)
	}
	return nil
}
