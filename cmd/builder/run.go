package main

import (
	"fmt"
	"os"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/run"
	"github.com/spf13/cobra"
)

// RunOptions is everything `builder run` was asked to do.
type RunOptions = run.Options

// RunIO are the streams of `builder run`.
type RunIO = run.IO

func newRunCommand() *cobra.Command {
	var (
		o          RunOptions
		reg        RegistryFlags
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
			var err error
			if o.Env, err = run.ParseEnv(env); err != nil {
				return err
			}
			o.Registry = reg.options
			code, err := run.Run(cmd.Context(), o, RunIO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
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
	reg.add(f)
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
