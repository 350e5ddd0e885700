package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/cmd/builder/internal/progressui"
	"github.com/builderdev/builder/exporter"
	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/prune"
	"github.com/builderdev/builder/registry"
	"github.com/builderdev/builder/report"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/state"
	"github.com/spf13/cobra"
)

// BuildOptions is everything `builder build` was asked to do.
type BuildOptions struct {
	ContextDir string
	// Dockerfile is the path of the Dockerfile ("" = ContextDir/Dockerfile).
	Dockerfile string
	Tags       []string
	// Labels are --label KEY=VALUE: added to the image's labels, over the
	// Dockerfile's, as docker build does (and not in the history).
	Labels    []string
	BuildArgs map[string]string
	Target    string
	NoCache   bool
	Progress  string
	// LogFile is --log-file: the whole plain log, not clipped.
	LogFile string
	Outputs []Output
	Root    string
	// NoCacheFilter are --no-cache-filter stages (comma-separated or
	// repeated): their steps run again.
	NoCacheFilter []string
	// IIDFile and MetadataFile are --iidfile and --metadata-file.
	IIDFile      string
	MetadataFile string
	// Call is what to do, as buildx --call: "build" (""), "check",
	// "targets" or "outline".
	Call string
	// Platform is --platform ("" = the host's).
	Platform string
	// Stdout receives the results of --call check|targets|outline (nil =
	// os.Stdout).
	Stdout io.Writer
	// Secrets, SSH and BuildContexts are the --secret, --ssh and
	// --build-context values (buildx syntax).
	Secrets       []string
	SSH           []string
	BuildContexts []string
	// Stdin is read for a context "-" or -f - (nil = os.Stdin).
	Stdin io.Reader
	// Sandbox shapes every RUN (hostname, limits, --allow).
	Sandbox SandboxOptions
	// Quiet is -q: no progress, the image ID on stdout on success.
	Quiet bool
	// Annotations are --annotation: set on the image manifest (OCI media
	// types only).
	Annotations map[string]string
	// Report is --report: the HTML report of the build (written also
	// when it fails).
	Report string
	// Push is --push (type=image,push=true); Pull is --pull (tags always
	// resolve at the registry); Registry are --tls-ca/--insecure-registry.
	Push     bool
	Pull     bool
	Registry RegistryFlags
	// Cache are --cache-to and --cache-from.
	Cache cacheFlags
	// GCLimit is --gc-limit: the root size above which the build
	// collects garbage when it is done ("" = $BUILDER_GC_LIMIT or the
	// default, "0" = never; see prune.Limit).
	GCLimit string
}

func newBuildCommand() *cobra.Command {
	var (
		o           BuildOptions
		buildArgs   []string
		outputs     []string
		check       bool
		sandbox     *sandboxFlags
		annotations []string
		load        bool
	)
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH",
		Short: "Build an image from a Dockerfile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ContextDir = args[0]
			var err error
			if o.BuildArgs, err = build.ParseBuildArgs(buildArgs); err != nil {
				return err
			}
			if o.Call, err = callFlag(cmd, o.Call, check); err != nil {
				return err
			}
			if err := sandbox.parse(); err != nil {
				return err
			}
			sourceDateEpochFromEnv(o.BuildArgs)
			if err := validateTags(o.Tags); err != nil {
				return err
			}
			if o.Outputs, err = build.ParseOutputSpecs(outputs); err != nil {
				return err
			}
			if err := build.CheckStdoutOutputs(o.Outputs, o.stdout()); err != nil {
				return err
			}
			if o.Annotations, err = build.ParseAnnotations(annotations, o.Outputs); err != nil {
				return err
			}
			if o.Quiet {
				for _, out := range o.Outputs {
					if out.Dest == build.StdoutDest {
						return errors.New("--quiet prints the image ID on stdout: it cannot be used with an output to stdout (dest=-)")
					}
				}
				o.Progress = progressui.ModeQuiet
			}
			if o.Push {
				o.Outputs = append(o.Outputs, Output{Type: "image", Attrs: map[string]string{"push": "true"}, Annotations: o.Annotations})
			}
			return Build(cmd.Context(), o, os.Stderr)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Dockerfile, "file", "f", "", "Name of the Dockerfile (default: PATH/Dockerfile)")
	f.StringArrayVar(&o.Secrets, "secret", nil, `Secret to expose to the build (format: "id=mysecret[,src=/local/secret]" or "id=x,env=VAR")`)
	f.StringArrayVar(&o.SSH, "ssh", nil, `SSH agent socket to expose to the build (format: "default|<id>[=<socket>]")`)
	f.StringArrayVar(&o.BuildContexts, "build-context", nil, `Additional build contexts (e.g., name=path, name=docker-image://ref, name=oci-layout://path[:tag], name=https://url)`)
	f.StringArrayVarP(&o.Tags, "tag", "t", nil, `Name and optionally a tag (format: "name:tag")`)
	f.StringArrayVar(&o.Labels, "label", nil, "Set metadata for an image (KEY=VALUE)")
	f.StringArrayVar(&buildArgs, "build-arg", nil, "Set build-time variables")
	f.StringVar(&o.Target, "target", "", "Set the target build stage to build")
	f.BoolVar(&o.NoCache, "no-cache", false, "Do not use cache when building the image")
	f.StringVar(&o.Progress, "progress", defaultProgress(), progressHelp)
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "Suppress the build output and print image ID on success")
	f.StringVar(&o.LogFile, "log-file", "", "Also write the whole build log (plain, secrets masked, steps not clipped) to this file")
	f.StringArrayVar(&o.NoCacheFilter, "no-cache-filter", nil, "Do not cache specified stages")
	f.StringArrayVarP(&outputs, "output", "o", nil, `Output destination (format: "type=oci,dest=FILE")`)
	f.StringVar(&o.IIDFile, "iidfile", "", "Write the image ID to a file")
	f.StringVar(&o.MetadataFile, "metadata-file", "", "Write build result metadata to a file")
	f.StringVar(&o.Report, "report", "", "Write an HTML report of the build (timeline, critical path, resources, layers) to a file")
	rootFlag(cmd, &o.Root)
	f.StringVar(&o.Call, "call", "build", `Set method for evaluating build ("check", "outline", "targets")`)
	f.StringVar(&o.Call, "print", "build", `Alias of --call`)
	f.BoolVar(&check, "check", false, `Shorthand for "--call=check"`)
	f.StringVar(&o.Platform, "platform", "", `Set target platform for build (comma-separated for several: "linux/amd64,linux/arm64")`)
	sandbox = addSandboxFlags(cmd, &o.Sandbox)
	f.BoolVar(&o.Push, "push", false, `Shorthand for "--output=type=registry"`)
	f.StringArrayVar(&annotations, "annotation", nil, `Add an annotation to the image manifest ("KEY=VALUE" or "manifest:KEY=VALUE")`)
	// buildx --load loads the result into docker: here every build lands
	// in the local image store already, so buildx scripts run unchanged.
	f.BoolVar(&load, "load", false, `Shorthand for "--output=type=docker" in buildx: here the image is stored locally (builder images), as every build does`)
	f.BoolVar(&o.Pull, "pull", false, "Always attempt to pull all referenced images")
	o.Registry.add(f)
	o.Cache.add(f)
	f.StringVar(&o.GCLimit, "gc-limit", "", "Collect the least recently used build cache after the build when the state root is larger (default $"+prune.LimitEnv+", or the smaller of 10% of its filesystem and 20GB; 0 = never)")
	return cmd
}

// Build runs one build and prints its progress to out.
func Build(ctx context.Context, o BuildOptions, out io.Writer) error {
	if !slices.Contains(progressui.Modes, o.Progress) {
		return fmt.Errorf("--progress %q: must be one of %s", o.Progress, strings.Join(progressui.Modes, ", "))
	}
	if err := prepareResultFiles(o); err != nil {
		return err
	}
	// builder prune waits for no build.
	root, err := state.Open(o.Root, state.Options{Lock: state.LockShared})
	if err != nil {
		return err
	}
	defer root.Close()
	limit, err := prune.Limit(o.GCLimit, root.Dir())
	if err != nil {
		return err
	}
	cleanupStdin, err := stdinInputs(&o, root, o.Stdin)
	defer cleanupStdin()
	if err != nil {
		return fmt.Errorf("unable to prepare context: %w", err)
	}
	req, err := o.request()
	if err != nil {
		return err
	}
	dfPath, err := build.LoadDockerfile(ctx, &req, o.Dockerfile)
	if err != nil {
		return err
	}
	if o.Call == "targets" || o.Call == "outline" {
		if err := runCall(o, dfPath, req.Dockerfile, out); err != nil {
			return reportError(out, dfPath, req.Dockerfile, err)
		}
		return nil
	}
	res, err := buildWithProgress(ctx, o, root, req, limit, out)
	// The report is written for failed builds too.
	if o.Report != "" && res != nil && res.Record != nil {
		if rerr := writeReport(o.Report, res.Record); rerr != nil {
			fmt.Fprintf(out, "WARNING: --report: %v\n", rerr)
		}
	}
	if err != nil {
		return reportError(out, dfPath, req.Dockerfile, err)
	}
	if o.Call == "check" {
		return printCheck(o.stdout(), dfPath, req.Dockerfile, res.Warnings)
	}
	return writeResultFiles(o, res)
}

// buildWithProgress runs req through the library with the progress display on out
// (secrets masked, long step logs clipped, --log-file).
func buildWithProgress(ctx context.Context, o BuildOptions, root *state.Root, req build.Request, gcLimit int64, out io.Writer) (*build.Result, error) {
	blobs, err := root.Blobs()
	if err != nil {
		return nil, err
	}
	regOpts := o.Registry.options(root, blobs)
	regOpts.Pull = o.Pull
	b, err := build.New(root, registry.New(regOpts))
	if err != nil {
		return nil, err
	}
	display, err := progressui.New(out, o.Progress)
	if err != nil {
		return nil, err
	}
	logs, flushLogs, err := progressui.Filtered(display, req.Secrets, o.LogFile)
	if err != nil {
		display.Close()
		return nil, err
	}
	rep := progress{Reporter: logs, warn: display.Warn}
	res, err := b.Build(ctx, req, rep)
	if err == nil && o.Call != "check" {
		// Over --gc-limit, the least recently used cache goes.
		err = prune.AutoGC(ctx, rep, root, gcLimit)
	}
	flushLogs()
	display.Close()
	return res, err
}

// progress is the build's reporter: statuses and logs through the log
// filters, warnings straight to the display.
type progress struct {
	solver.Reporter
	warn func(line int, msg string)
}

// Warn implements build.Reporter.
func (p progress) Warn(line int, msg string) { p.warn(line, msg) }

// request is the library request of the flags (the Dockerfile is read
// later).
func (o BuildOptions) request() (build.Request, error) {
	req := build.Request{
		ContextDir:    o.ContextDir,
		Target:        o.Target,
		BuildArgs:     o.BuildArgs,
		Labels:        build.ParseLabels(o.Labels),
		Tags:          o.Tags,
		NoCache:       o.NoCache,
		NoCacheStages: build.SplitList(o.NoCacheFilter),
		Pull:          o.Pull,
		Annotations:   o.Annotations,
		Sandbox:       o.Sandbox.Sandbox(),
		CheckOnly:     o.Call == "check",
	}
	var err error
	if req.Secrets, err = build.ParseSecrets(o.Secrets); err != nil {
		return req, err
	}
	if req.SSH, err = build.ParseSSH(o.SSH); err != nil {
		return req, err
	}
	if req.Contexts, err = build.ParseNamedContexts(o.BuildContexts); err != nil {
		return req, err
	}
	if req.CacheExports, req.CacheImports, err = o.Cache.parse(); err != nil {
		return req, err
	}
	if o.Platform != "" {
		if req.Platforms, err = llb.ParsePlatforms(o.Platform); err != nil {
			return req, fmt.Errorf("--platform: %w", err)
		}
	}
	for _, out := range o.Outputs {
		bo, err := out.Output(o.stdout())
		if err != nil {
			return req, err
		}
		req.Outputs = append(req.Outputs, bo)
	}
	return req, nil
}

// writeResultFiles prints the image ID with -q and writes --iidfile and
// --metadata-file.
func writeResultFiles(o BuildOptions, res *build.Result) error {
	if o.Quiet { // docker build -q
		fmt.Fprintln(o.stdout(), res.ImageID)
	}
	if o.IIDFile != "" {
		if err := writeIIDFile(o.IIDFile, res); err != nil {
			return fmt.Errorf("--iidfile: %w", err)
		}
	}
	if o.MetadataFile != "" {
		if err := writeJSONFile(o.MetadataFile, res.Metadata()); err != nil {
			return fmt.Errorf("--metadata-file: %w", err)
		}
	}
	return nil
}

// writeReport writes the HTML report of a build to path.
func writeReport(path string, b *report.Build) error {
	return fsutil.WriteOutputFunc(path, func(w io.Writer) error { return report.WriteHTML(w, b) })
}

// validateTags checks every -t name against Docker's reference grammar
// before any work, as docker build does ("invalid tag").
func validateTags(tags []string) error {
	for _, t := range tags {
		if err := exporter.ValidateName(t); err != nil {
			return fmt.Errorf("invalid tag %q: %w", t, err)
		}
	}
	return nil
}

// reportError prints err as BuildKit does: the Dockerfile lines around the
// failing instruction, then the message; it returns an exitError.
func reportError(out io.Writer, dfPath string, df []byte, err error) error {
	loc, tail := build.ErrorLocation(err)
	printSource(out, dfPath, df, loc)
	if len(tail) > 0 {
		fmt.Fprintln(out, "last output lines:")
		for _, l := range tail {
			fmt.Fprintf(out, "  %s\n", l)
		}
	}
	fmt.Fprintf(out, "ERROR: failed to build: %v\n", err)
	return &exitError{code: 1}
}
