package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/run"
	"github.com/spf13/cobra"
)

// RunOptions is everything `builder run` was asked to do.
type RunOptions struct {
	// Image is "oci-archive:FILE", "oci:DIR", or a name, ID or digest of
	// the local image store, or a registry reference.
	Image string
	// Name names the container (docker run --name); "" picks one.
	Name string
	// Pull is docker run's --pull: "missing" (the default: the local
	// store first, then the registry), "always" (the registry, even for
	// a stored name) or "never" (the local store only).
	Pull string
	// Registry are the --tls-ca/--insecure-registry flags.
	Registry RegistryFlags
	// Platform is --platform: which image of a multi-platform image runs
	// ("" = the host's, else the only one).
	Platform string
	// Args replace the image's Cmd (and follow the entrypoint).
	Args []string
	// Entrypoint, when set (Entrypoint != nil), replaces the image's
	// entrypoint and drops its Cmd, as docker run --entrypoint does.
	Entrypoint  *string
	Remove      bool
	Interactive bool
	Tty         bool
	Network     string
	Memory      int64
	Hostname    string
	Env         []string
	Workdir     string
	User        string
	Root        string
	// MaxLayerSize bounds each layer's uncompressed size (0 = the
	// default of ops.DefaultMaxLayerSize).
	MaxLayerSize int64
}

// RunIO are the streams of `builder run`: the process's when there is no
// tty, the terminal's otherwise.
type RunIO = run.IO

func newRunCommand() *cobra.Command {
	var (
		o          RunOptions
		memory     string
		entrypoint string
		env        []string
	)
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Run a command in a new container from an image",
		Long: `Run a command in a new container from an image, in the sandbox that RUN steps use.

IMAGE is oci-archive:FILE (an OCI image-layout tar, as written by
builder build --output type=oci), oci:DIR (an OCI image-layout directory),
or a name or ID of the local image store (builder build -t), or else a
registry reference, pulled as --pull says. The exit status is the
command's.

Without --rm the container's filesystem stays and is listed by
builder ps -a until builder rm removes it.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Image, o.Args = args[0], args[1:]
			if cmd.Flags().Changed("entrypoint") {
				o.Entrypoint = &entrypoint
			}
			if memory != "" {
				n, err := build.ParseSize(memory)
				if err != nil {
					return fmt.Errorf("invalid argument %q for --memory: %w", memory, err)
				}
				o.Memory = n
			}
			for _, e := range env {
				k, _, ok := strings.Cut(e, "=")
				if k == "" {
					return fmt.Errorf("invalid argument %q for -e: missing name", e)
				}
				if !ok {
					v, set := os.LookupEnv(k)
					if !set {
						continue
					}
					e = k + "=" + v
				}
				o.Env = append(o.Env, e)
			}
			code, err := Run(cmd.Context(), o, RunIO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
			if err != nil {
				// As docker run: 125 when the container could not be run.
				fmt.Fprintf(os.Stderr, "ERROR: %v\n", err)
				return &exitError{code: 125}
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	// Everything after IMAGE belongs to the command.
	f.SetInterspersed(false)
	f.BoolVar(&o.Remove, "rm", false, "Automatically remove the container and its filesystem when it exits")
	f.StringVar(&o.Name, "name", "", "Assign a name to the container")
	f.StringVar(&o.Pull, "pull", "missing", `Pull image before running ("always", "missing", "never")`)
	f.StringVar(&o.Platform, "platform", "", `Set platform if server is multi-platform capable`)
	o.Registry.add(f)
	f.BoolVarP(&o.Interactive, "interactive", "i", false, "Keep STDIN open")
	f.BoolVarP(&o.Tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.StringVar(&o.Network, "network", "host", `Network mode ("host" or "none")`)
	f.StringVarP(&memory, "memory", "m", "", "Memory limit (e.g. 512m, 1.5g)")
	f.StringVarP(&o.Hostname, "hostname", "h", "", "Container host name (default: a random id)")
	f.StringArrayVarP(&env, "env", "e", nil, "Set environment variables (K=V, or K to take it from the environment)")
	f.StringVarP(&o.Workdir, "workdir", "w", "", "Working directory inside the container")
	f.StringVarP(&o.User, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	f.StringVar(&entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	rootFlag(cmd, &o.Root)
	// -h is --hostname, as in docker run.
	f.BoolP("help", "", false, "help for run")
	return cmd
}

// Run runs o.Image and returns the command's exit code, or an error when
// it could not run.
func Run(ctx context.Context, o RunOptions, stdio RunIO) (int, error) {
	return run.Run(ctx, run.Options{
		Image: o.Image, Name: o.Name, Pull: o.Pull, Registry: o.Registry.options, Platform: o.Platform,
		Args: o.Args, Entrypoint: o.Entrypoint, Remove: o.Remove, Interactive: o.Interactive, Tty: o.Tty,
		Network: o.Network, Memory: o.Memory, Hostname: o.Hostname, Env: o.Env, Workdir: o.Workdir,
		User: o.User, Root: o.Root, MaxLayerSize: o.MaxLayerSize,
	}, stdio)
}
