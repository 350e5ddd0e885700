package build

import (
	"context"
	"fmt"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/executor"
	imagestore "github.com/builderdev/builder/exporter/store"
	"github.com/builderdev/builder/frontend/dockerfile"
	"github.com/builderdev/builder/registry"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
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
	// runErr is why RUN cannot execute (no privileges for sandboxes); a
	// build without RUN still works.
	runErr error
	runner ops.Runner
}

// open gets the root's parts for req.
func (b *Builder) open(req Request, locals map[string]ops.LocalDir) (*parts, error) {
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
	ex, err := b.root.Executor()
	if err != nil {
		p.runErr, p.runner = err, failedRunner{err}
	} else {
		p.runner = ex
		p.runErr = ex.CgroupError()
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
// stores the image in the local store and writes every output. Progress
// goes to r. Errors at a Dockerfile instruction wrap a *dockerfile.Error or
// an *ops.StepError, which carry its location.
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
	p, err := b.open(req, nc.locals)
	if err != nil {
		return nil, err
	}
	if _, ok := p.runner.(failedRunner); !ok && p.runErr != nil {
		r.Warn(0, fmt.Sprintf("rootless without cgroup delegation: RUN steps have no resource limits and their stats come from getrusage (%v)", p.runErr))
	}
	col := newCollector(r)
	name := req.DockerfileName
	if name == "" {
		name = "Dockerfile"
	}
	res, err := convert(ctx, col, dockerfile.Options{
		Dockerfile:       req.Dockerfile,
		Filename:         name,
		BuildArgs:        req.BuildArgs,
		Target:           req.Target,
		ExcludePatterns:  req.Excludes,
		NoCache:          req.NoCache,
		Resolver:         p.src,
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
	})
	if err != nil {
		return nil, err
	}
	if req.CheckOnly {
		return &Result{Warnings: res.Warnings}, nil
	}
	s := solver.New(p.worker, p.cache, solver.Options{Reporter: col})
	var result solver.Result
	if res.State != nil {
		if result, err = s.Solve(ctx, res.State); err != nil {
			return nil, err
		}
	}
	cfg, err := imageConfig(res.Config, req)
	if err != nil {
		return nil, err
	}
	job := &exportJob{b: b, r: col, w: p.worker, result: result, cfg: cfg, req: req, healthStartInterval: res.HealthcheckStartInterval}
	out, err := job.export(ctx)
	if err != nil {
		return nil, err
	}
	out.Warnings = res.Warnings
	out.Steps, out.Summary = col.steps()
	return out, nil
}

// imageConfig is the frontend's config with the build's time (the
// SOURCE_DATE_EPOCH, or now) and the request's labels.
func imageConfig(cfg v1.ConfigFile, req Request) (v1.ConfigFile, error) {
	cfg.Created.Time = time.Now().UTC()
	if epoch, ok, err := SourceDateEpoch(req.BuildArgs); err != nil {
		return cfg, err
	} else if ok {
		cfg.Created.Time = epoch
	}
	// The frontend leaves the times of this build's history entries unset:
	// they are the build's time, as in BuildKit.
	cfg.History = append([]v1.History(nil), cfg.History...)
	for i := range cfg.History {
		if cfg.History[i].Created.IsZero() {
			cfg.History[i].Created = cfg.Created
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
