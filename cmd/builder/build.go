package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/cmd/builder/progressui"
	"github.com/builderdev/builder/exporter"
	imagestore "github.com/builderdev/builder/exporter/store"
	"github.com/builderdev/builder/frontend/dockerfile"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/registry"
	"github.com/builderdev/builder/report"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
	"github.com/builderdev/builder/solver/remotecache"
	"github.com/builderdev/builder/state"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
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
	// healthStartInterval is the frontend's HEALTHCHECK --start-interval,
	// which the exporter adds to the config (set by export).
	healthStartInterval time.Duration
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
	// inlineCache, set for --cache-to type=inline, returns the cache to
	// put into the config of an image with the given layers.
	inlineCache func(ctx context.Context, layers []cache.Layer) (json.RawMessage, error)
}

func newBuildCommand() *cobra.Command {
	var (
		o         BuildOptions
		buildArgs []string
		outputs   []string
		check     bool
		sandbox   *sandboxFlags
	)
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH",
		Short: "Build an image from a Dockerfile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ContextDir = args[0]
			var err error
			if o.BuildArgs, err = parseBuildArgs(buildArgs); err != nil {
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
			for _, s := range outputs {
				out, err := parseOutput(s)
				if err != nil {
					return err
				}
				o.Outputs = append(o.Outputs, out)
			}
			if err := checkStdoutOutputs(o.Outputs, o.stdout()); err != nil {
				return err
			}
			if o.Push {
				o.Outputs = append(o.Outputs, Output{Type: "image", Attrs: map[string]string{"push": "true"}})
			}
			return Build(cmd.Context(), o, os.Stderr)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Dockerfile, "file", "f", "", "Name of the Dockerfile (default: PATH/Dockerfile)")
	f.StringArrayVar(&o.Secrets, "secret", nil, `Secret to expose to the build (format: "id=mysecret[,src=/local/secret]" or "id=x,env=VAR")`)
	f.StringArrayVar(&o.SSH, "ssh", nil, `SSH agent socket to expose to the build (format: "default|<id>[=<socket>]")`)
	f.StringArrayVar(&o.BuildContexts, "build-context", nil, `Additional build contexts (e.g., name=path, name=docker-image://ref, name=oci-layout://path[:tag])`)
	f.StringArrayVarP(&o.Tags, "tag", "t", nil, `Name and optionally a tag (format: "name:tag")`)
	f.StringArrayVar(&o.Labels, "label", nil, "Set metadata for an image (KEY=VALUE)")
	f.StringArrayVar(&buildArgs, "build-arg", nil, "Set build-time variables")
	f.StringVar(&o.Target, "target", "", "Set the target build stage to build")
	f.BoolVar(&o.NoCache, "no-cache", false, "Do not use cache when building the image")
	f.StringVar(&o.Progress, "progress", "auto", `Set type of progress output ("auto", "plain", "tty")`)
	f.StringVar(&o.LogFile, "log-file", "", "Also write the whole build log (plain, secrets masked, steps not clipped) to this file")
	f.StringArrayVarP(&outputs, "output", "o", nil, `Output destination (format: "type=oci,dest=FILE")`)
	f.StringVar(&o.IIDFile, "iidfile", "", "Write the image ID to a file")
	f.StringVar(&o.MetadataFile, "metadata-file", "", "Write build result metadata to a file")
	f.StringVar(&o.Report, "report", "", "Write an HTML report of the build (timeline, critical path, resources, layers) to a file")
	rootFlag(cmd, &o.Root)
	f.StringVar(&o.Call, "call", "build", `Set method for evaluating build ("check", "outline", "targets")`)
	f.StringVar(&o.Call, "print", "build", `Alias of --call`)
	f.BoolVar(&check, "check", false, `Shorthand for "--call=check"`)
	f.StringVar(&o.Platform, "platform", "", `Set target platform for build (only the host's platform can RUN)`)
	sandbox = addSandboxFlags(cmd, &o.Sandbox)
	f.BoolVar(&o.Push, "push", false, `Shorthand for "--output=type=registry"`)
	f.BoolVar(&o.Pull, "pull", false, "Always attempt to pull all referenced images")
	o.Registry.add(f)
	o.Cache.add(f)
	return cmd
}

// Build runs one build and prints its progress to out.
func Build(ctx context.Context, o BuildOptions, out io.Writer) error {
	switch o.Progress {
	case "auto", "plain", "tty":
	default:
		return fmt.Errorf("--progress %q: must be auto, plain or tty", o.Progress)
	}
	// builder prune waits for no build.
	root, err := state.Open(o.Root, state.Options{Lock: state.LockShared})
	if err != nil {
		return err
	}
	defer root.Close()
	cleanupStdin, err := stdinInputs(&o, root, o.Stdin)
	defer cleanupStdin()
	if err != nil {
		return fmt.Errorf("unable to prepare context: %w", err)
	}
	secrets, err := parseSecrets(o.Secrets)
	if err != nil {
		return err
	}
	sshSocks, err := parseSSH(o.SSH)
	if err != nil {
		return err
	}
	bctx, err := parseBuildContexts(o.BuildContexts)
	if err != nil {
		return err
	}
	if _, _, err := o.Cache.parse(); err != nil {
		return err
	}
	if fi, err := os.Stat(o.ContextDir); err != nil || !fi.IsDir() {
		return fmt.Errorf("unable to prepare context: path %q not found or not a directory", o.ContextDir)
	}
	dfPath := o.Dockerfile
	if dfPath == "" {
		dfPath = defaultDockerfile(o.ContextDir)
	}
	dfBytes, err := readInDir(ctx, dfPath)
	if err != nil {
		return fmt.Errorf("failed to read dockerfile: %w", err)
	}
	if o.Call == "targets" || o.Call == "outline" {
		if err := runCall(o, dfPath, dfBytes, out); err != nil {
			return reportError(out, dfPath, dfBytes, err)
		}
		return nil
	}
	var platform llb.Platform
	if o.Platform != "" {
		if strings.Contains(o.Platform, ",") {
			return fmt.Errorf("--platform %q: building for several platforms at once is not supported", o.Platform)
		}
		if platform, err = dockerfile.ParsePlatform(o.Platform); err != nil {
			return fmt.Errorf("--platform: %w", err)
		}
	}
	excludes, err := readIgnoreFor(ctx, dfPath, o.ContextDir)
	if err != nil {
		return err
	}
	store, err := root.Cache()
	if err != nil {
		return err
	}
	sn, err := root.Snapshots()
	if err != nil {
		return err
	}
	ex, err := root.Executor()
	if err != nil {
		return err
	}
	hasher, err := root.FileHashes()
	if err != nil {
		return err
	}
	images, err := root.Images()
	if err != nil {
		return err
	}
	regOpts := o.Registry.options(root, store.Blobs())
	regOpts.Pull = o.Pull
	reg := registry.New(regOpts)

	// Images in the local store come first, as docker build uses local
	// images (see exporter/store.Source).
	// With --pull names are always resolved at the registry.
	storeFirst := &imagestore.Source{Store: images, Remote: reg, AlwaysPull: o.Pull}
	// oci-layout:// build contexts are served from their directories.
	src := newLayoutImages(storeFirst, store.Blobs())

	display, err := progressui.New(out, o.Progress)
	if err != nil {
		return err
	}
	if err := root.RecoveryError(); err != nil {
		display.Warn(0, fmt.Sprintf("cleaning up after killed builds: %v", err))
	}
	if w := ex.CgroupWarning(); w != "" {
		display.Warn(0, w)
	}
	logs, flushLogs, err := stepLogs(display, secrets, o.LogFile)
	if err != nil {
		display.Close()
		return err
	}
	closeDisplay := func() { flushLogs(); display.Close() }
	col := newCollector(logs)
	col.traffic = reg.Traffic
	ctx = withPusher(ctx, reg, col)
	res, err := convert(ctx, col, dockerfile.Options{
		Dockerfile:       dfBytes,
		Filename:         filepath.Base(dfPath),
		BuildArgs:        o.BuildArgs,
		Target:           o.Target,
		ExcludePatterns:  excludes,
		NoCache:          o.NoCache,
		Resolver:         src,
		NamedContexts:    bctx.named,
		AllowInsecure:    o.Sandbox.AllowInsecure(),
		AllowNetworkHost: o.Sandbox.AllowNetworkHost(),
		DefaultNetwork:   o.Sandbox.defaultNetwork(),
		Platform:         platform,
		RunPlatform:      dockerfile.HostPlatform(),
		AllStages:        o.Call == "check",
		Warn: func(w dockerfile.Warning) {
			if o.Call != "check" {
				display.Warn(w.Location.Line, w.Rule+": "+w.Message)
			}
		},
	})
	if err != nil {
		closeDisplay()
		return reportError(out, dfPath, dfBytes, err)
	}
	if o.Call == "check" {
		closeDisplay()
		return printCheck(o.stdout(), dfPath, dfBytes, res.Warnings)
	}
	o.BuildArgs = withDockerfileEpoch(o.BuildArgs, res.SourceDateEpoch)

	w := ops.New(ops.Options{
		Snapshotter: sn,
		Runner:      ex,
		Images:      src,
		Meta:        store.Metadata(),
		Blobs:       store.Blobs(),
		Hasher:      hasher,
		Locals:      bctx.localsWith(o.ContextDir),
		StateDir:    root.WorkerDir(),
		Secrets:     secrets,
		SSH:         sshSocks,
		// Every RUN: --hostname, --memory & co, --cgroup-parent.
		Hostname:     o.Sandbox.Hostname,
		Limits:       o.Sandbox.Limits,
		CgroupParent: o.Sandbox.CgroupParent,
		Warn:         func(msg string) { display.Warn(0, msg) },
	})
	rc, err := openRemoteCache(ctx, col, func(msg string) { display.Warn(0, msg) }, o.Cache, reg, store.Blobs())
	if err != nil {
		closeDisplay()
		return err
	}
	keys := rc.keyStore(store, w)
	s := solver.New(w, keys, solver.Options{Reporter: col})
	var result solver.Result
	if res.State != nil {
		if err = w.PruneNoCacheMounts(res.State); err == nil {
			result, err = s.Solve(ctx, res.State)
		}
	}
	var cacheBuild remotecache.Build
	if err == nil && res.State != nil {
		cacheBuild = remotecache.Build{Keys: s.Keys(res.State), Final: result, KeyStore: keys, Worker: w}
		o.inlineCache = rc.inline(cacheBuild)
	}
	if err == nil {
		err = export(ctx, col, w, images, result, res, o)
	}
	if err == nil && res.State != nil {
		err = rc.export(ctx, col, cacheBuild)
	}
	closeDisplay()
	// The report is written for failed builds too.
	if o.Report != "" {
		if rerr := writeReport(o.Report, col.record()); rerr != nil {
			fmt.Fprintf(out, "WARNING: --report: %v\n", rerr)
		}
	}
	if err != nil {
		return reportError(out, dfPath, dfBytes, err)
	}
	return nil
}

// writeReport writes the HTML report of a build to path.
func writeReport(path string, b *report.Build) error {
	return writeFile(path, func(w io.Writer) error { return report.WriteHTML(w, b) })
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

// convert runs the frontend as one progress step, as BuildKit shows the
// loading of the Dockerfile and the base images' metadata.
func convert(ctx context.Context, r solver.Reporter, opt dockerfile.Options) (*dockerfile.Result, error) {
	var res *dockerfile.Result
	err := step(r, "[internal] load build definition from "+opt.Filename, func() error {
		var err error
		res, err = dockerfile.Convert(ctx, opt)
		return err
	})
	return res, err
}

// export writes the result to every --output.
func export(ctx context.Context, r solver.Reporter, w *ops.Worker, images *imagestore.Store, result solver.Result, res *dockerfile.Result, o BuildOptions) error {
	cfg := res.Config
	// The frontend leaves the times of this build's history entries and
	// the config's unset: with SOURCE_DATE_EPOCH they are the epoch, else
	// the worker fills them from the times its results were made (see
	// ops.Worker.Image), so a cached rebuild gives the same image.
	if epoch, ok, err := sourceDateEpoch(o.BuildArgs); err != nil {
		return err
	} else if ok {
		cfg.Created.Time = epoch
		cfg.History = append([]v1.History(nil), cfg.History...)
		for i := range cfg.History {
			if cfg.History[i].Created.IsZero() {
				cfg.History[i].Created = cfg.Created
			}
		}
	}
	cfg.Config.Labels = withLabels(cfg.Config.Labels, o.Labels)
	o.healthStartInterval = res.HealthcheckStartInterval
	// Every build lands in the local image store; then the --outputs.
	e, err := exportImage(ctx, r, w, images, result, cfg, o)
	if err != nil {
		return err
	}
	if col, ok := r.(*collector); ok {
		col.exported = e
	}
	if o.IIDFile != "" {
		if err := writeIIDFile(o.IIDFile, e); err != nil {
			return fmt.Errorf("--iidfile: %w", err)
		}
	}
	if o.MetadataFile != "" {
		col, _ := r.(*collector)
		if err := writeJSONFile(o.MetadataFile, buildMetadata(e, col)); err != nil {
			return fmt.Errorf("--metadata-file: %w", err)
		}
	}
	return nil
}

// step reports fn as a vertex of its own.
func step(r solver.Reporter, name string, fn func() error) error {
	d := digest.FromString(name + time.Now().String())
	st := solver.Status{Digest: d, Name: name, Started: time.Now()}
	r.Status(st)
	err := fn()
	st.Completed = time.Now()
	st.Err = err
	r.Status(st)
	return err
}

// reportError prints err as BuildKit does: the Dockerfile lines around the
// failing instruction, then the message; it returns an exitError.
func reportError(out io.Writer, dfPath string, df []byte, err error) error {
	var se *ops.StepError
	loc := llb.Location{}
	var fe *dockerfile.Error
	switch {
	case errors.As(err, &se):
		loc = se.Location
	case errors.As(err, &fe):
		loc = llb.Location{File: fe.File, Line: fe.Line, EndLine: fe.EndLine}
	}
	printSource(out, dfPath, df, loc)
	if se != nil && len(se.Tail) > 0 {
		fmt.Fprintln(out, "last output lines:")
		for _, l := range se.Tail {
			fmt.Fprintf(out, "  %s\n", l)
		}
	}
	fmt.Fprintf(out, "ERROR: failed to build: %v\n", err)
	return &exitError{code: 1}
}

// withLabels returns labels with the --label KEY=VALUE values set over them
// (a bare KEY is an empty label, as in docker build).
func withLabels(labels map[string]string, flags []string) map[string]string {
	if len(flags) == 0 {
		return labels
	}
	out := make(map[string]string, len(labels)+len(flags))
	for k, v := range labels {
		out[k] = v
	}
	for _, l := range flags {
		k, v, _ := strings.Cut(l, "=")
		out[k] = v
	}
	return out
}

// defaultDockerfile is the Dockerfile of a context without -f: "Dockerfile",
// or "dockerfile" when only that exists (as BuildKit and docker do,
// moby/moby#10858).
func defaultDockerfile(contextDir string) string {
	p := filepath.Join(contextDir, "Dockerfile")
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		lower := filepath.Join(contextDir, "dockerfile")
		if _, err := os.Lstat(lower); err == nil {
			return lower
		}
	}
	return p
}

// withDockerfileEpoch returns args with SOURCE_DATE_EPOCH set from the
// frontend's epoch (a Dockerfile's ARG SOURCE_DATE_EPOCH=... default) when
// no --build-arg set it, so the exporters use it as BuildKit's do.
func withDockerfileEpoch(args map[string]string, epoch *time.Time) map[string]string {
	if epoch == nil {
		return args
	}
	if _, ok := args["SOURCE_DATE_EPOCH"]; ok {
		return args
	}
	out := make(map[string]string, len(args)+1)
	for k, v := range args {
		out[k] = v
	}
	out["SOURCE_DATE_EPOCH"] = strconv.FormatInt(epoch.Unix(), 10)
	return out
}
