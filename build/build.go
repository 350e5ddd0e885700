package build

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/executor"
	imagestore "github.com/builderdev/builder/exporter/store"
	"github.com/builderdev/builder/frontend/dockerfile"
	"github.com/builderdev/builder/registry"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
	"github.com/builderdev/builder/solver/remotecache"
	"github.com/builderdev/builder/state"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
)

// Builder runs builds on one state root.
type Builder struct {
	root     *state.Root
	registry *registry.Client
	// images is the root's image store, opened by the first build.
	images *imagestore.Store
}

// New returns a Builder that keeps its state in root (opened with
// state.LockShared for as long as builds run) and pulls and pushes with
// reg, a client over root's blob store; nil makes one with the docker
// config's credentials (registry.Options' defaults).
func New(root *state.Root, reg *registry.Client) (*Builder, error) {
	if reg == nil {
		blobs, err := root.Blobs()
		if err != nil {
			return nil, err
		}
		reg = registry.New(registry.Options{Blobs: blobs, StateDir: root.RegistryDir()})
	}
	return &Builder{root: root, registry: reg}, nil
}

// parts are the pieces of the root a build uses.
type parts struct {
	worker *ops.Worker
	src    imageBackend
	cache  *cache.Store
	runner ops.Runner
	// warning is why RUN steps have no limits (rootless without cgroup
	// delegation), "" when they have.
	warning string
}

// open gets the root's parts for req.
func (b *Builder) open(req Request, locals map[string]ops.LocalDir, r Reporter) (*parts, error) {
	store, err := b.root.Cache()
	if err != nil {
		return nil, err
	}
	sn, err := b.root.Snapshots()
	if err != nil {
		return nil, err
	}
	hasher, err := b.root.FileHashes()
	if err != nil {
		return nil, err
	}
	if b.images == nil {
		if b.images, err = b.root.Images(); err != nil {
			return nil, err
		}
	}
	p := &parts{cache: store}
	if ex, err := b.root.Executor(); err != nil {
		// Without the privileges for sandboxes a build without RUN still
		// works; a RUN fails with why.
		p.runner = failedRunner{err}
	} else {
		p.runner, p.warning = ex, ex.CgroupWarning()
	}
	// Images in the local store come first, as docker build uses local
	// images (see exporter/store.Source); with Pull names are always
	// resolved at the registry. oci-layout:// contexts are served from
	// their directories.
	p.src = newLayoutImages(&imagestore.Source{Store: b.images, Remote: b.registry, AlwaysPull: req.Pull}, store.Blobs())
	p.worker = ops.New(ops.Options{
		Snapshotter:  sn,
		Runner:       p.runner,
		Images:       p.src,
		Meta:         store.Metadata(),
		Blobs:        store.Blobs(),
		Hasher:       hasher,
		Locals:       locals,
		StateDir:     b.root.WorkerDir(),
		Secrets:      ops.SecretMap(req.Secrets),
		SSH:          req.SSH,
		Hostname:     sandboxHostname(req.Sandbox.Hostname),
		Limits:       req.Sandbox.Limits,
		CgroupParent: req.Sandbox.CgroupParent,
		Warn:         func(msg string) { r.Warn(0, msg) },
	})
	return p, nil
}

func sandboxHostname(h string) string {
	if h == "" {
		return executor.DefaultHostname
	}
	return h
}

// failedRunner is the runner of a builder without sandboxes: every RUN
// fails with why.
type failedRunner struct{ err error }

func (f failedRunner) Run(context.Context, executor.Spec) (executor.Stats, error) {
	return executor.Stats{}, f.err
}

// Build runs req: it converts the Dockerfile, solves the target stage,
// stores the image in the local store, writes every output and remote
// cache. Progress goes to r. Errors at a Dockerfile instruction wrap a
// *dockerfile.Error or an *ops.StepError, which carry its location. A
// failed build returns its result too when steps ran, for its Record.
func (b *Builder) Build(ctx context.Context, req Request, r Reporter) (*Result, error) {
	for _, out := range req.Outputs {
		if err := out.validate(); err != nil {
			return nil, fmt.Errorf("output %s: %w", out.Type, err)
		}
	}
	nc, err := namedContexts(req)
	if err != nil {
		return nil, err
	}
	col := newCollector(r)
	col.traffic = b.registry.Traffic
	p, err := b.open(req, nc.locals, col)
	if err != nil {
		return nil, err
	}
	if err := b.root.RecoveryError(); err != nil {
		col.Warn(0, fmt.Sprintf("cleaning up after killed builds: %v", err))
	}
	if p.warning != "" {
		col.Warn(0, p.warning)
	}
	res, err := convert(ctx, col, frontendOptions(req, nc, p.src, col))
	if err != nil {
		return &Result{Record: col.record()}, err
	}
	if req.CheckOnly {
		return &Result{Warnings: res.Warnings, Record: col.record()}, nil
	}
	req.BuildArgs = withDockerfileEpoch(req.BuildArgs, res.SourceDateEpoch)
	out, err := b.solveAndExport(ctx, req, p, res, col)
	if out == nil {
		out = &Result{}
	}
	out.Warnings = res.Warnings
	out.Record = col.record()
	return out, err
}

// frontendOptions are the frontend's options of req.
func frontendOptions(req Request, nc *contexts, src imageBackend, col *collector) dockerfile.Options {
	name := req.DockerfileName
	if name == "" {
		name = "Dockerfile"
	}
	return dockerfile.Options{
		Dockerfile:       req.Dockerfile,
		Filename:         name,
		BuildArgs:        req.BuildArgs,
		Target:           req.Target,
		ExcludePatterns:  req.Excludes,
		NoCache:          req.NoCache,
		Resolver:         src,
		NamedContexts:    nc.named,
		AllowInsecure:    req.Sandbox.AllowInsecure,
		AllowNetworkHost: req.Sandbox.AllowNetworkHost,
		DefaultNetwork:   req.Sandbox.Network,
		Platform:         req.Platform,
		RunPlatform:      dockerfile.HostPlatform(),
		AllStages:        req.CheckOnly,
		Warn: func(w dockerfile.Warning) {
			if !req.CheckOnly {
				col.Warn(w.Location.Line, w.Rule+": "+w.Message)
			}
		},
	}
}

// solveAndExport solves the converted target, exports the image and
// writes the remote caches.
func (b *Builder) solveAndExport(ctx context.Context, req Request, p *parts, res *dockerfile.Result, col *collector) (*Result, error) {
	warn := func(msg string) { col.Warn(0, msg) }
	rc := openRemoteCache(ctx, col, warn, req.CacheExports, req.CacheImports, b.registry, p.cache.Blobs())
	keys := rc.keyStore(p.cache, p.worker)
	s := solver.New(p.worker, keys, solver.Options{Reporter: col})
	var result solver.Result
	var cacheBuild remotecache.Build
	var inline func(ctx context.Context, layers []cache.Layer) (json.RawMessage, error)
	if res.State != nil {
		if err := p.worker.PruneNoCacheMounts(res.State); err != nil {
			return nil, err
		}
		var err error
		if result, err = s.Solve(ctx, res.State); err != nil {
			return nil, err
		}
		cacheBuild = remotecache.Build{Keys: s.Keys(res.State), Final: result, KeyStore: keys, Worker: p.worker}
		inline = rc.inline(cacheBuild)
	}
	cfg, err := imageConfig(res.Config, req)
	if err != nil {
		return nil, err
	}
	job := &exportJob{b: b, r: col, w: p.worker, result: result, cfg: cfg, req: req,
		healthStartInterval: res.HealthcheckStartInterval, inlineCache: inline}
	out, err := job.export(ctx)
	if err != nil {
		return nil, err
	}
	if res.State != nil {
		if err := rc.export(ctx, col, cacheBuild); err != nil {
			return out, err
		}
	}
	return out, nil
}

// withDockerfileEpoch returns args with SOURCE_DATE_EPOCH set from the
// frontend's epoch (a Dockerfile's ARG SOURCE_DATE_EPOCH=... default) when
// the request does not set it, so the exporters use it as BuildKit's do.
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

// imageConfig is the frontend's config with the request's labels and,
// with SOURCE_DATE_EPOCH, the epoch as the created time of the config and
// of this build's history entries. Without it the frontend leaves those
// times unset and the worker fills them from the times its results were
// made (see ops.Worker.Image), so a cached rebuild gives the same image.
func imageConfig(cfg v1.ConfigFile, req Request) (v1.ConfigFile, error) {
	if epoch, ok, err := SourceDateEpoch(req.BuildArgs); err != nil {
		return cfg, err
	} else if ok {
		cfg.Created.Time = epoch
		cfg.History = append([]v1.History(nil), cfg.History...)
		for i := range cfg.History {
			if cfg.History[i].Created.IsZero() {
				cfg.History[i].Created = cfg.Created
			}
		}
	}
	cfg.Config.Labels = withLabels(cfg.Config.Labels, req.Labels)
	return cfg, nil
}

// withLabels returns labels with extra set over them.
func withLabels(labels, extra map[string]string) map[string]string {
	if len(extra) == 0 {
		return labels
	}
	out := make(map[string]string, len(labels)+len(extra))
	for k, v := range labels {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
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
