package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/executor"
	imagestore "github.com/builderdev/builder/exporter/imagestore"
	"github.com/builderdev/builder/frontend/dockerfile"
	"github.com/builderdev/builder/internal/remotecache"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/registry"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
	"github.com/builderdev/builder/state"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
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
	worker    *ops.Worker
	snapshots snapshot.Snapshotter
	src       imageBackend
	cache     *cache.Store
	runner    ops.Runner
	// warning is why RUN steps have no limits (rootless without cgroup
	// delegation), "" when they have.
	warning string
}

// open gets the root's parts for req.
func (b *Builder) open(req Request, locals map[string]ops.LocalDir, r Reporter) (_ *parts, err error) {
	store, err := b.root.Cache()
	if err != nil {
		return nil, err
	}
	// Opened while the Dockerfile is converted (see SnapshotsLater).
	sn := b.root.SnapshotsLater()
	defer func() {
		if err != nil {
			snapshot.WaitOpened(sn)
		}
	}()
	hasher, err := b.root.FileHashes()
	if err != nil {
		return nil, err
	}
	if b.images == nil {
		if b.images, err = b.root.Images(); err != nil {
			return nil, err
		}
	}
	p := &parts{cache: store, snapshots: sn}
	if ex, err := b.root.Executor(); err != nil {
		// Without the privileges for sandboxes a build without RUN still
		// works; a RUN fails with why.
		p.runner = failedRunner{err}
	} else {
		p.runner, p.warning = ex, ex.CgroupWarning()
	}
	// Images in the local store come first, as docker build uses local
	// images (see exporter/imagestore.Source); with Pull names are always
	// resolved at the registry. oci-layout:// contexts are served from
	// their directories.
	p.src = newResolveOnce(newLayoutImages(&imagestore.Source{Store: b.images, Remote: b.registry, AlwaysPull: req.Pull}, store.Blobs()))
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
		Hostname:     req.Sandbox.Hostname,
		Limits:       req.Sandbox.Limits,
		CgroupParent: req.Sandbox.CgroupParent,
		Warn:         func(msg string) { r.Warn(0, msg) },
	})
	return p, nil
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
	if err := req.validate(); err != nil {
		return nil, err
	}
	nc, err := namedContexts(req)
	if err != nil {
		return nil, err
	}
	col := newCollector(r)
	col.traffic = b.registry.Traffic
	for _, out := range req.Outputs {
		if len(req.Tags) > 0 && len(out.Names) > 0 && !slices.Equal(req.Tags, out.Names) {
			col.Warn(0, fmt.Sprintf("--output type=%s: -t %s replaces name=%s, as in buildx", out.Type, strings.Join(req.Tags, ","), strings.Join(out.Names, ",")))
		}
	}
	p, err := b.open(req, nc.locals, col)
	if err != nil {
		return nil, err
	}
	// The root's owner may close it once Build returns.
	defer snapshot.WaitOpened(p.snapshots)
	if err := b.root.RecoveryError(); err != nil {
		col.Warn(0, fmt.Sprintf("cleaning up after killed builds: %v", err))
	}
	if p.warning != "" {
		col.Warn(0, p.warning)
	}
	platforms := req.Platforms
	if len(platforms) == 0 {
		platforms = []llb.Platform{{}} // the frontend's default, the host's
	}
	fopt := frontendOptions(req, nc, p.src, col)
	fopt.SourceEpoch = p.worker.HTTPSourceEpoch
	results, err := convertAll(ctx, col, platforms, fopt)
	if err == nil && !req.CheckOnly {
		err = checkPlatforms(results)
	}
	if err != nil {
		return &Result{Record: col.record()}, err
	}
	res := results[0]
	if req.CheckOnly {
		return &Result{Warnings: res.Warnings, Record: col.record()}, nil
	}
	if len(res.UnusedBuildArgs) > 0 { // BuildKit's warning
		col.Warn(0, fmt.Sprintf("One or more build-args %v were not consumed", res.UnusedBuildArgs))
	}
	req.BuildArgs = withDockerfileEpoch(req.BuildArgs, res.SourceDateEpoch)
	out, err := b.solveAndExport(ctx, req, p, results, col)
	if out == nil {
		out = &Result{}
	}
	out.Warnings = res.Warnings
	out.Record = col.record()
	return out, err
}

// validate checks the outputs before anything runs, and that several
// platforms go only to outputs that can hold an index.
func (req Request) validate() error {
	for _, out := range req.Outputs {
		if err := out.validate(); err != nil {
			return fmt.Errorf("output %s: %w", out.Type, err)
		}
		if out.Type == Image && out.Push && len(out.names(req.Tags)) == 0 {
			return errNoPushName // before the build, as buildx
		}
		if out.Type == Docker && len(req.Platforms) > 1 {
			return fmt.Errorf("output type=docker: docker exporter does not support exporting manifest lists, use the oci exporter instead (%d platforms)", len(req.Platforms))
		}
	}
	return nil
}

// errNoPushName is buildx's error for a push without a name.
var errNoPushName = errors.New("tag is needed when pushing to registry (-t NAME, or name= of the output)")

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
		NoCacheStages:    req.NoCacheStages,
		Resolver:         src,
		NamedContexts:    nc.named,
		AllowInsecure:    req.Sandbox.AllowInsecure,
		AllowNetworkHost: req.Sandbox.AllowNetworkHost,
		DefaultNetwork:   req.Sandbox.Network,
		ExtraHosts:       req.Sandbox.ExtraHosts,
		ShmSize:          req.Sandbox.ShmSize,
		Ulimits:          req.Sandbox.Ulimits,
		AllStages:        req.CheckOnly,
		Warn: func(w dockerfile.Warning) {
			if !req.CheckOnly {
				col.Warn(w.Location.Line, w.Rule+": "+w.Message)
			}
		},
	}
}

// solveAndExport solves the converted targets (one per platform) with
// one solver, exports the image and writes the remote caches.
func (b *Builder) solveAndExport(ctx context.Context, req Request, p *parts, results []*dockerfile.Result, col *collector) (*Result, error) {
	warn := func(msg string) { col.Warn(0, msg) }
	rc := openRemoteCache(ctx, col, warn, req.CacheExports, req.CacheImports, b.registry, p.cache.Blobs())
	keys := rc.keyStore(p.cache, p.worker)
	s := solver.New(p.worker, keys, solver.Options{Reporter: col})
	solved, err := solveAll(ctx, s, p.worker, results)
	if err != nil {
		return nil, err
	}
	var cacheBuild remotecache.Build
	if results[0].State != nil {
		cacheBuild = cacheExportOf(s, results, solved, keys, p.worker)
	}
	job := &exportJob{b: b, r: col, w: p.worker, req: req}
	var out *Result
	if len(results) == 1 {
		job.inline = func(int) inlineCacheFunc { return rc.inline(cacheBuild) }
		out, err = job.export(ctx, solved[0], results[0])
	} else {
		// --cache-to type=inline: each platform's image carries its own.
		job.inline = func(i int) inlineCacheFunc {
			return rc.inline(cacheExportOf(s, results[i:i+1], solved[i:i+1], keys, p.worker))
		}
		out, err = job.exportPlatforms(ctx, solved, results)
	}
	if err != nil {
		return nil, err
	}
	if results[0].State != nil {
		// Last-use times for prune --filter until= and the GC's LRU order.
		if err := p.cache.Touch(solver.KeyDigests(cacheBuild.Keys)); err != nil {
			col.Warn(0, fmt.Sprintf("recording the use of cache keys: %v", err))
		}
		if err := rc.export(ctx, col, cacheBuild); err != nil {
			return out, err
		}
	}
	return out, nil
}

// withDockerfileEpoch returns args with SOURCE_DATE_EPOCH set from the
// frontend's epoch: a Dockerfile's ARG SOURCE_DATE_EPOCH=... default when
// the request does not set it, or what a name (a stage, a named context)
// resolved to, so the exporters use it as BuildKit's do.
func withDockerfileEpoch(args map[string]string, epoch *time.Time) map[string]string {
	v, set := args["SOURCE_DATE_EPOCH"]
	if epoch == nil && (!set || v == "" || isSeconds(v)) {
		return args
	}
	if epoch != nil && set && isSeconds(v) {
		return args
	}
	out := make(map[string]string, len(args)+1)
	for k, v := range args {
		out[k] = v
	}
	if epoch == nil {
		delete(out, "SOURCE_DATE_EPOCH") // a name without a time
		return out
	}
	out["SOURCE_DATE_EPOCH"] = strconv.FormatInt(epoch.Unix(), 10)
	return out
}

// isSeconds reports whether v is a SOURCE_DATE_EPOCH in seconds.
func isSeconds(v string) bool {
	_, err := strconv.ParseInt(v, 10, 64)
	return err == nil
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

// convertAll runs the frontend once per platform, as one progress step
// ("[internal] load build definition"): each platform's graph shares the
// vertices that do not depend on it (a FROM --platform=$BUILDPLATFORM
// stage without TARGET* args is the same vertex in each), which the solver
// then runs once. Warnings are reported once, from the first platform
// only, as BuildKit's Dockerfile frontend reports them (it converts every
// other platform without its Warn function): an InvalidBaseImagePlatform
// of a later platform is not reported.
func convertAll(ctx context.Context, r solver.Reporter, platforms []llb.Platform, opt dockerfile.Options) ([]*dockerfile.Result, error) {
	out := make([]*dockerfile.Result, len(platforms))
	err := step(r, "[internal] load build definition from "+opt.Filename, func() error {
		// The platforms are converted at once: each waits on the
		// registry for its base images. The first platform's error, in
		// --platform order, is the one reported.
		errs := make([]error, len(platforms))
		var wg sync.WaitGroup
		for i, p := range platforms {
			o := opt
			o.Platform = p
			o.ShowPlatform = len(platforms) > 1
			if i > 0 {
				o.Warn = nil
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i], errs[i] = dockerfile.Convert(ctx, o)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// checkPlatforms fails before the build when a RUN is for a platform this
// machine cannot execute (see ops.CheckPlatforms).
func checkPlatforms(results []*dockerfile.Result) error {
	var roots []*llb.Vertex
	for _, r := range results {
		roots = append(roots, r.State)
	}
	return ops.CheckPlatforms(roots...)
}

// solveAll solves every platform's graph at once with one solver, so an
// identical vertex runs once for all (--no-cache's cache mounts emptied
// first).
func solveAll(ctx context.Context, s *solver.Solver, w *ops.Worker, results []*dockerfile.Result) ([]solver.Result, error) {
	out := make([]solver.Result, len(results))
	for _, res := range results {
		if res.State != nil {
			if err := w.PruneNoCacheMounts(res.State); err != nil {
				return nil, err
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, res := range results {
		if res.State == nil {
			continue
		}
		g.Go(func() error {
			r, err := s.Solve(gctx, res.State)
			out[i] = r
			return err
		})
	}
	return out, g.Wait()
}

// inlineCacheFunc returns the inline cache (--cache-to type=inline) of an
// image with the given layers, for its config; nil when none is asked.
type inlineCacheFunc func(ctx context.Context, layers []cache.Layer) (json.RawMessage, error)

// cacheExportOf is what the cache exports write: the keyed vertices of
// every platform's graph (each once) and every platform's target result.
func cacheExportOf(s *solver.Solver, results []*dockerfile.Result, solved []solver.Result, keys solver.KeyStore, w *ops.Worker) remotecache.Build {
	b := remotecache.Build{Final: solved[0], KeyStore: keys, Worker: w}
	seen := map[digest.Digest]bool{}
	for i, res := range results {
		if res.State == nil {
			continue
		}
		for _, kv := range s.Keys(res.State) {
			if !seen[kv.Vertex.Digest()] {
				seen[kv.Vertex.Digest()] = true
				b.Keys = append(b.Keys, kv)
			}
		}
		if i > 0 {
			b.Finals = append(b.Finals, solved[i])
		}
	}
	return b
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
