package dockerfile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/builderdev/builder/llb"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"golang.org/x/sync/errgroup"
)

// ImageResolver resolves FROM / COPY --from images. Implemented by package
// registry; faked in tests.
type ImageResolver interface {
	// ResolveImageConfig resolves ref (as written after expansion, e.g.
	// "busybox", "localhost:5000/base:1") for platform and returns the
	// canonical reference pinned by the digest of the platform's manifest
	// ("localhost:5000/base:1@sha256:...",
	// "docker.io/library/busybox:latest@sha256:..."), the image op's
	// reference; the canonical reference pinned by the digest ref named
	// or its tag resolved to (an index's for a multi-platform image; ""
	// = pinned), which names the FROM step as in BuildKit; and the raw
	// config JSON.
	ResolveImageConfig(ctx context.Context, ref string, platform llb.Platform) (pinned, named string, config []byte, err error)
}

// Options are the inputs of Convert.
type Options struct {
	Dockerfile      []byte
	Filename        string            // for messages, e.g. "Dockerfile"
	BuildArgs       map[string]string // --build-arg
	Target          string            // --target; "" = last stage
	Platform        llb.Platform      // target platform; zero = linux/runtime.GOARCH
	ExcludePatterns []string          // parsed .dockerignore, put on the context LocalOp
	NoCache         bool              // set Meta.IgnoreCache on every vertex
	// NoCacheStages are --no-cache-filter: the stages (AS names, any
	// case) whose steps run again (Meta.IgnoreCache); the others may use
	// the cache.
	NoCacheStages []string
	Resolver      ImageResolver
	// NamedContexts are the --build-context values by name.
	NamedContexts map[string]NamedContext
	// AllowInsecure is --allow security.insecure: RUN --security=insecure
	// is an error without it.
	AllowInsecure bool
	// AllowNetworkHost is --allow network.host: RUN --network=host is an
	// error without it.
	AllowNetworkHost bool
	// DefaultNetwork is the network of a RUN without --network (the
	// build's --network; NetHost, the host's, by default).
	DefaultNetwork llb.NetMode
	// ExtraHosts, ShmSize and Ulimits are --add-host, --shm-size and
	// --ulimit: set on every RUN (and so part of its digest).
	ExtraHosts []llb.HostIP
	ShmSize    int64
	Ulimits    []llb.Ulimit
	// Warn receives each build-check warning as it is found (nil: they are
	// only collected in Result.Warnings).
	Warn func(Warning)
	// SourceEpoch is the time of an HTTP source, for
	// SOURCE_DATE_EPOCH=<named context or stage> (its Last-Modified, or
	// the newest file time of a tar archive; nil when it has none). Nil:
	// such a SOURCE_DATE_EPOCH is an error.
	SourceEpoch func(ctx context.Context, op llb.HTTPOp) (*time.Time, error)
	// AllStages converts every stage, not only those the target needs
	// (what `build --check` checks).
	AllStages bool
	// ShowPlatform puts each stage's platform in its steps' progress names
	// ("[linux/arm64 build 2/3] RUN ..."), as buildx does when several
	// platforms are built at once.
	ShowPlatform bool
}

// Result is the converted target stage.
type Result struct {
	Target string      // the stage built
	State  *llb.Vertex // nil = empty scratch image
	// Config is the final image config. RootFS.DiffIDs are the base image's;
	// the exporter rewrites them.
	Config v1.ConfigFile
	// Warnings are the build-check findings, in the order found.
	Warnings []Warning
	// UnusedBuildArgs are the --build-arg names no ARG of the build
	// declared (BuildKit warns that they "were not consumed").
	UnusedBuildArgs []string
	// HealthcheckStartInterval is HEALTHCHECK --start-interval, which
	// v1.HealthConfig cannot hold: the exporter writes it into the config
	// JSON's Healthcheck as "StartInterval" (0 = none).
	HealthcheckStartInterval time.Duration
	// SourceDateEpoch is SOURCE_DATE_EPOCH of the build (--build-arg or the
	// Dockerfile's global ARG default), nil when unset: the image's
	// creation time, and the time rewrite-timestamp clamps to.
	SourceDateEpoch *time.Time
}

// Error is a conversion error at a place in the Dockerfile.
type Error struct {
	File    string
	Line    int
	EndLine int
	Err     error
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// OptionError is an error in a build option (--target, --no-cache-filter)
// rather than in a Dockerfile line: it carries no location.
type OptionError struct {
	Option string // the flag, e.g. "--target"
	Err    error
}

func (e *OptionError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *OptionError) Unwrap() error { return e.Err }

const (
	historyComment    = "buildkit.dockerfile.v0"
	synthesizeComment = "buildkit.exporter.image.v0"
	emptyImageName    = "scratch"
	contextName       = "context"
	createdByKey      = "created_by"
)

// stage is one FROM block, or an image only used by COPY --from
// (unregistered).
type stage struct {
	index        int
	name         string // the AS name, lowercase, or ""
	display      string // name in progress: name, "stage-N", or "" when there is one stage
	st           instructions.Stage
	baseName     string // FROM after expansion
	baseMatch    map[string]struct{}
	baseUnset    map[string]struct{}
	platform     *llb.Platform // FROM --platform
	base         *stage
	cmds         []command
	unregistered bool

	// resolution of an image base
	resolveOnce sync.Once
	resolveErr  error
	pinned      string // by the platform manifest's digest: the image op's ref
	shown       string // as resolved (an index's digest): the FROM step's name
	baseImg     *v1.ConfigFile
	baseLayers  int
	// named is the tree of a local --build-context that replaces the base.
	named *llb.Vertex

	// dispatch state
	dispatched  bool
	dispatching bool
	state       *llb.Vertex
	img         v1.ConfigFile
	env         envList
	dir         string
	user        string
	plat        llb.Platform
	buildArgs   []instructions.KeyValuePairOptional
	cmdTotal    int
	showPlat    bool // prefix names the platform (Options.ShowPlatform)
	cmdIndex    int
	cmdOnBuild  bool
	cmdSet      bool
	// startInterval is the Healthcheck's StartInterval (see healthcheck.go).
	startInterval time.Duration
	// build-check state: a WORKDIR was set (here or in a parent stage),
	// and the last CMD, ENTRYPOINT and HEALTHCHECK.
	workdirSet                            bool
	cmdUse, entrypointUse, healthcheckUse useTracker
}

type command struct {
	instructions.Command
	// sources are the stages a COPY --from (index 0) or the RUN --mount
	// flags (one per mount, nil for the context) read.
	sources []*stage
	onBuild bool
}

type converter struct {
	opt      Options
	file     string
	shlex    *shell.Lex
	global   envList
	stages   []*stage
	byName   map[string]*stage
	platform llb.Platform // target platform
	explicit bool         // opt.Platform was set
	context  *llb.Vertex
	lint     *linter.Linter
	warnings []Warning
	defaults envList // the automatic global args, before the meta ARGs
	// metaArgKeys are the names the ARGs before the first FROM declare.
	metaArgKeys []string
	// noCacheStage is true while dispatching a stage --no-cache-filter
	// names.
	noCacheStage bool
	// epoch is SOURCE_DATE_EPOCH (--build-arg, or the default of a global
	// ARG), nil when unset.
	epoch *time.Time
	// consumed are the build args an ARG of the build declared.
	consumed map[string]bool
}

// Convert parses opt.Dockerfile and converts the target stage (and the stages
// it needs) into an llb graph and the image config of the result.
func Convert(ctx context.Context, opt Options) (res *Result, err error) {
	c := newConverter(opt)
	defer func() {
		// The parser packages are not ours: never let them take the build
		// down.
		if r := recover(); r != nil {
			res, err = nil, &Error{File: c.file, Line: 1, Err: fmt.Errorf("internal error converting Dockerfile: %v", r)}
		}
	}()
	if opt.Resolver == nil {
		return nil, errors.New("dockerfile: Options.Resolver is nil")
	}
	return c.convert(ctx)
}

// newConverter is the converter of one Convert, ListTargets or MakeOutline
// call.
func newConverter(opt Options) *converter {
	c := &converter{opt: opt, file: opt.Filename, byName: map[string]*stage{}}
	if c.file == "" {
		c.file = "Dockerfile"
	}
	return c
}

// errAt wraps err with the first line of rng.
func (c *converter) errAt(rng []parser.Range, err error) error {
	if err == nil {
		return nil
	}
	var de *Error
	if errors.As(err, &de) {
		return err
	}
	start, end := lines(rng)
	var le *parser.LocationError
	if errors.As(err, &le) {
		if s, e := lines(flatten(le.Locations)); s > 0 {
			start, end = s, e
		}
		if inner := le.Unwrap(); inner != nil {
			err = inner
		}
	}
	if start == 0 {
		start = 1
	}
	if end == start {
		end = 0
	}
	return &Error{File: c.file, Line: start, EndLine: end, Err: err}
}

func flatten(rr [][]parser.Range) []parser.Range {
	var out []parser.Range
	for _, r := range rr {
		out = append(out, r...)
	}
	return out
}

// lines is the first and last line of rng (0, 0 when empty).
func lines(rng []parser.Range) (int, int) {
	if len(rng) == 0 {
		return 0, 0
	}
	start, end := math.MaxInt32, 0
	for _, r := range rng {
		start = min(start, r.Start.Line)
		end = max(end, r.End.Line)
	}
	return start, end
}

func (c *converter) location(rng []parser.Range) llb.Location {
	s, e := lines(rng)
	if e == s {
		e = 0
	}
	return llb.Location{File: c.file, Line: s, EndLine: e}
}

func (c *converter) convert(ctx context.Context) (*Result, error) {
	stages, metaArgs, ast, err := c.parseStages(true)
	if err != nil {
		return nil, err
	}
	c.shlex = shell.NewLex(ast.EscapeToken)
	c.lintStatic(ast, stages)
	for _, cmd := range metaArgs {
		for _, a := range cmd.Args {
			c.metaArgKeys = append(c.metaArgKeys, a.Key)
		}
	}

	c.platform = hostPlatform()
	if c.opt.Platform != (llb.Platform{}) {
		c.platform = normalizePlatform(c.opt.Platform)
		c.explicit = true
	}
	targetName := c.opt.Target
	if targetName == "" {
		targetName = stages[len(stages)-1].Name
	}
	if err := c.buildGlobalArgs(metaArgs, targetName); err != nil {
		return nil, err
	}
	if c.epoch, err = c.sourceDateEpoch(ctx, stages); err != nil {
		return nil, err
	}
	c.lintDefaultFromArgs(stages, metaArgs, c.defaults)
	if err := c.buildStages(stages); err != nil {
		return nil, err
	}
	target, err := c.resolveTarget()
	if err != nil {
		return nil, err
	}
	if err := c.buildCommands(); err != nil {
		return nil, err
	}
	if err := c.prefetch(ctx, target); err != nil {
		return nil, err
	}
	if c.opt.AllStages {
		for _, s := range c.stages {
			if s.unregistered {
				continue
			}
			if err := c.prefetch(ctx, s); err != nil {
				return nil, err
			}
			if err := c.dispatch(ctx, s); err != nil {
				return nil, err
			}
		}
	}
	if err := c.dispatch(ctx, target); err != nil {
		return nil, err
	}
	if err := c.lintError(); err != nil {
		return nil, err
	}
	res := c.finalize(target)
	res.Warnings = c.warnings
	res.SourceDateEpoch = c.epoch
	res.UnusedBuildArgs = c.unusedBuildArgs()
	return res, nil
}

// sourceDateEpoch is SOURCE_DATE_EPOCH from --build-arg or, as in BuildKit,
// from the default of a global ARG (ARG SOURCE_DATE_EPOCH=... before FROM):
// seconds, "context", or the name of a named context or of a source-only
// stage whose source's time is the epoch (see epochOfName). A name is
// replaced by the seconds it resolves to, so ARG SOURCE_DATE_EPOCH in a
// stage sees the number.
func (c *converter) sourceDateEpoch(ctx context.Context, stages []instructions.Stage) (*time.Time, error) {
	v, ok := c.opt.BuildArgs["SOURCE_DATE_EPOCH"]
	if !ok {
		v, _ = c.global.Get("SOURCE_DATE_EPOCH")
	}
	if v == "" {
		return nil, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		tm := time.Unix(n, 0).UTC()
		return &tm, nil
	}
	// "context" is the time of the build context's source (BuildKit
	// testSourceDateEpochContextLocalUnset): a local context has none.
	var tm *time.Time
	if v != "context" {
		var err error
		if tm, err = c.epochOfName(ctx, v, stages); err != nil {
			return nil, err
		}
	}
	if tm == nil {
		// No time: the epoch stays unset and the arg is removed (an ARG
		// SOURCE_DATE_EPOCH in a stage sees no value).
		c.setEpochArg(nil)
		return nil, nil
	}
	c.setEpochArg(tm)
	return tm, nil
}

// setEpochArg replaces SOURCE_DATE_EPOCH in the build args and the global
// args with tm in seconds, or removes it when tm is nil.
func (c *converter) setEpochArg(tm *time.Time) {
	args := make(map[string]string, len(c.opt.BuildArgs))
	for k, val := range c.opt.BuildArgs {
		if k != "SOURCE_DATE_EPOCH" {
			args[k] = val
		}
	}
	_, inArgs := c.opt.BuildArgs["SOURCE_DATE_EPOCH"]
	_, inGlobal := c.global.Get("SOURCE_DATE_EPOCH")
	c.global = c.global.unset("SOURCE_DATE_EPOCH")
	if tm != nil {
		s := strconv.FormatInt(tm.Unix(), 10)
		if inArgs {
			args["SOURCE_DATE_EPOCH"] = s
		}
		if inGlobal {
			c.global = c.global.set("SOURCE_DATE_EPOCH", s)
		}
	}
	c.opt.BuildArgs = args
}

// buildGlobalArgs computes the args visible to FROM: the automatic platform
// args and the ARGs before the first FROM, with --build-arg overrides.
func (c *converter) buildGlobalArgs(metaArgs []instructions.ArgCommand, target string) error {
	bp, tp := hostPlatform(), c.platform
	if target == "" {
		target = "default"
	}
	defaults := [][2]string{
		{"BUILDPLATFORM", bp.String()},
		{"BUILDOS", bp.OS},
		{"BUILDOSVERSION", bp.OSVersion},
		{"BUILDARCH", bp.Architecture},
		{"BUILDVARIANT", bp.Variant},
		{"TARGETPLATFORM", tp.String()},
		{"TARGETOS", tp.OS},
		{"TARGETOSVERSION", tp.OSVersion},
		{"TARGETARCH", tp.Architecture},
		{"TARGETVARIANT", tp.Variant},
		{"TARGETSTAGE", target},
	}
	var env envList
	for _, kv := range defaults {
		v := kv[1]
		if ov, ok := c.opt.BuildArgs[kv[0]]; ok {
			v = ov
		}
		env = env.set(kv[0], v)
	}
	c.defaults = env
	for _, cmd := range metaArgs {
		for _, kp := range cmd.Args {
			c.consume(kp.Key)
			if v, ok := c.opt.BuildArgs[kp.Key]; ok {
				env = env.set(kp.Key, v)
				continue
			}
			if kp.Value != nil {
				v, _, err := c.shlex.ProcessWord(*kp.Value, env)
				if err != nil {
					return c.errAt(cmd.Location(), err)
				}
				env = env.set(kp.Key, v)
			}
		}
	}
	c.global = env
	return nil
}

// buildStages expands every FROM (as BuildKit does, also for stages the
// target does not need) and links stages to the stages they are based on.
func (c *converter) buildStages(stages []instructions.Stage) error {
	for i, st := range stages {
		res, err := c.shlex.ProcessWordWithMatches(st.BaseName, c.global)
		if err != nil {
			return c.errAt(st.Location, fmt.Errorf("expanding FROM %s: %w", st.BaseName, err))
		}
		if res.Result == "" {
			return c.errAt(st.Location, fmt.Errorf("base name (%s) should not be blank%s", st.BaseName, undefinedHint(res.Unmatched)))
		}
		var platRes *shell.ProcessWordResult
		s := &stage{
			index:     i,
			name:      st.Name,
			display:   st.Name,
			st:        st,
			baseName:  res.Result,
			baseMatch: res.Matched,
			baseUnset: res.Unmatched,
		}
		if s.display == "" {
			s.display = fmt.Sprintf("stage-%d", i)
		}
		if st.Platform != "" {
			pres, err := c.shlex.ProcessWordWithMatches(st.Platform, c.global)
			if err != nil {
				return c.errAt(st.Location, fmt.Errorf("failed to process arguments for platform %s: %w", st.Platform, err))
			}
			platRes = &pres
			if pres.Result == "" {
				return c.errAt(st.Location, fmt.Errorf("empty platform value from expression %s%s", st.Platform, undefinedHint(pres.Unmatched)))
			}
			p, err := parsePlatform(pres.Result)
			if err != nil {
				return c.errAt(st.Location, fmt.Errorf("failed to parse platform %s: %w", st.Platform, err))
			}
			s.platform = &p
		}
		c.lintFrom(st, res, platRes)
		if _, ok := c.namedContext(st.Name); ok && st.Name != "" {
			// As in BuildKit, a --build-context named like a stage
			// replaces the whole stage: its FROM and instructions are
			// not used, FROM name / COPY --from=name get the context.
			s.baseName, s.baseMatch, s.baseUnset = st.Name, nil, nil
			s.st.Commands = nil
		}
		c.addStage(s)
		if s.base == nil && s.baseName != emptyImageName {
			s.cmdTotal = 1
		}
		for _, cmd := range s.st.Commands {
			switch cmd.(type) {
			case *instructions.AddCommand, *instructions.CopyCommand, *instructions.RunCommand, *instructions.WorkdirCommand:
				s.cmdTotal++
			}
		}
	}
	return nil
}

func undefinedHint(unset map[string]struct{}) string {
	if len(unset) == 0 {
		return ""
	}
	names := make([]string, 0, len(unset))
	for k := range unset {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) == 1 {
		return fmt.Sprintf(" (undefined variable %s; declare it with ARG before the first FROM or pass --build-arg)", names[0])
	}
	return fmt.Sprintf(" (undefined variables %s; declare them with ARG before the first FROM or pass --build-arg)", strings.Join(names, ", "))
}

func (c *converter) addStage(s *stage) {
	c.stages = append(c.stages, s)
	if b, ok := c.byName[s.baseName]; ok {
		s.base = b
	}
	if s.name != "" {
		c.byName[strings.ToLower(s.name)] = s
	}
}

// stageNames lists the named stages, for messages.
func (c *converter) stageNames() string {
	var names []string
	for _, s := range c.stages {
		if !s.unregistered && s.name != "" {
			names = append(names, s.name)
		}
	}
	if len(names) == 0 {
		return "the Dockerfile has no named stages"
	}
	return "existing stages: " + strings.Join(names, ", ")
}

// didYouMean suggests the stage nearest to name: "did you mean x? " or "".
func (c *converter) didYouMean(name string) string {
	var names []string
	for _, s := range c.stages {
		if !s.unregistered && s.name != "" {
			names = append(names, strings.ToLower(s.name))
		}
	}
	if n := nearestArg(strings.ToLower(name), names); n != "" {
		return "did you mean " + n + "? "
	}
	return ""
}

func (c *converter) resolveTarget() (*stage, error) {
	for _, n := range c.opt.NoCacheStages {
		if _, ok := c.byName[strings.ToLower(n)]; !ok {
			return nil, &OptionError{Option: "--no-cache-filter", Err: fmt.Errorf("--no-cache-filter: stage %q could not be found (%s%s)", n, c.didYouMean(n), c.stageNames())}
		}
	}
	if c.opt.Target == "" {
		return c.stages[len(c.stages)-1], nil
	}
	s, ok := c.byName[strings.ToLower(c.opt.Target)]
	if !ok {
		// --target is a flag, not a Dockerfile line: no location.
		return nil, &OptionError{Option: "--target", Err: fmt.Errorf("target stage %q could not be found (%s%s)", c.opt.Target, c.didYouMean(c.opt.Target), c.stageNames())}
	}
	return s, nil
}

// buildCommands links COPY --from to the stages or images it names.
func (c *converter) buildCommands() error {
	for _, s := range append([]*stage(nil), c.stages...) {
		if s.unregistered {
			continue
		}
		s.cmds = make([]command, 0, len(s.st.Commands))
		for _, ic := range s.st.Commands {
			cmd, err := c.toCommand(ic)
			if err != nil {
				return c.errAt(ic.Location(), err)
			}
			s.cmds = append(s.cmds, cmd)
		}
	}
	if len(c.stages) == 1 {
		c.stages[0].display = ""
	}
	return nil
}

func (c *converter) toCommand(ic instructions.Command) (command, error) {
	cmd := command{Command: ic}
	switch x := ic.(type) {
	case *instructions.CopyCommand:
		if x.From == "" {
			return cmd, nil
		}
		res, err := c.shlex.ProcessWordWithMatches(x.From, envList(nil))
		if err != nil {
			return command{}, err
		}
		if res.Result != x.From {
			return command{}, errors.New("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround")
		}
		src, err := c.sourceStage(x.From, ic.Location(), true)
		if err != nil {
			return command{}, err
		}
		cmd.sources = []*stage{src}
	case *instructions.RunCommand:
		for _, m := range instructions.GetMounts(x) {
			from := m.From
			if from == "" {
				cmd.sources = append(cmd.sources, nil)
				continue
			}
			src, err := c.sourceStage(from, ic.Location(), false)
			if err != nil {
				return command{}, err
			}
			cmd.sources = append(cmd.sources, src)
		}
	}
	return cmd, nil
}

// sourceStage finds the stage named (or, for COPY, numbered) from, or
// registers an image stage for it.
func (c *converter) sourceStage(from string, loc []parser.Range, byIndex bool) (*stage, error) {
	if byIndex {
		if idx, err := strconv.Atoi(from); err == nil {
			if idx < 0 || idx >= len(c.stages) {
				return nil, fmt.Errorf("invalid stage index %d (%s)", idx, c.stageNames())
			}
			return c.stages[idx], nil
		}
	}
	if s, ok := c.byName[strings.ToLower(from)]; ok {
		return s, nil
	}
	// A bare name one or two edits from a stage is a typo, not an image to
	// pull from Docker Hub.
	if !strings.ContainsAny(from, "/:@.") {
		if hint := c.didYouMean(from); hint != "" {
			return nil, fmt.Errorf("--from=%s names no stage (%s%s)", from, hint, c.stageNames())
		}
	}
	s := &stage{
		index:        len(c.stages),
		st:           instructions.Stage{BaseName: from, Location: loc},
		baseName:     from,
		unregistered: true,
	}
	c.addStage(s)
	return s, nil
}

// reachable lists the stages the target needs (static view: FROM and COPY
// --from; ONBUILD triggers add theirs when they are dispatched).
func reachable(target *stage) []*stage {
	seen := map[*stage]bool{}
	var out []*stage
	var visit func(*stage)
	visit = func(s *stage) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		out = append(out, s)
		visit(s.base)
		for _, cmd := range s.cmds {
			for _, src := range cmd.sources {
				visit(src)
			}
		}
	}
	visit(target)
	return out
}

// prefetch resolves the images of all needed stages concurrently. When
// some fail, the error is that of the first of them in the Dockerfile, not
// of whichever failed first: a build reports the same line on every run,
// as one that resolved its stages in order would.
func (c *converter) prefetch(ctx context.Context, target *stage) error {
	eg, gctx := errgroup.WithContext(ctx)
	eg.SetLimit(8)
	var stages []*stage
	for _, s := range reachable(target) {
		if s.base != nil || s.baseName == emptyImageName {
			continue
		}
		stages = append(stages, s)
	}
	// afterCancel[i] says that stage i failed once another's failure had
	// cancelled the group: its error may only be that (net/http's, for
	// one, tells the cause without wrapping context.Canceled).
	afterCancel := make([]bool, len(stages))
	for i, s := range stages {
		eg.Go(func() error {
			err := c.resolve(gctx, s)
			afterCancel[i] = err != nil && gctx.Err() != nil
			return err
		})
	}
	err := eg.Wait()
	if err == nil || ctx.Err() != nil {
		return err
	}
	order := make([]int, len(stages))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return stages[a].index - stages[b].index })
	for _, i := range order {
		s := stages[i]
		if afterCancel[i] {
			// Ask again, alone, to know whether this one fails too.
			s.resolveErr = c.doResolve(ctx, s)
		}
		if s.resolveErr != nil {
			return s.resolveErr
		}
	}
	return err
}

func (c *converter) stagePlatform(s *stage) llb.Platform {
	if s.platform != nil {
		return *s.platform
	}
	return c.platform
}

// resolve asks the resolver for the stage's base image, once.
func (c *converter) resolve(ctx context.Context, s *stage) error {
	s.resolveOnce.Do(func() {
		s.resolveErr = c.doResolve(ctx, s)
	})
	return s.resolveErr
}

func (c *converter) doResolve(ctx context.Context, s *stage) error {
	ref := s.baseName
	if nc, ok := c.namedContext(ref); ok {
		if nc.Local != "" {
			img := emptyImage(c.stagePlatform(s))
			s.baseImg = &img
			s.named = c.namedLocalState(ref, nc)
			return nil
		}
		if nc.HTTP != "" {
			img := emptyImage(c.stagePlatform(s))
			s.baseImg = &img
			s.named = llb.NewVertex(llb.HTTPOp{URL: nc.HTTP, Filename: "context"}, nil,
				llb.Meta{Name: "[context " + ref + "] " + nc.HTTP, IgnoreCache: c.opt.NoCache})
			return nil
		}
		ref = nc.Image
		if ref == emptyImageName {
			// docker-image://scratch is the empty image, as in BuildKit.
			img := emptyImage(c.stagePlatform(s))
			s.baseImg = &img
			s.pinned = emptyImageName
			return nil
		}
	}
	if strings.HasPrefix(ref, LayoutRefPrefix) {
		// An OCI layout context: the resolver knows it by this name.
	} else if _, err := name.ParseReference(ref); err != nil {
		return c.errAt(s.st.Location, fmt.Errorf("invalid reference %q%s: %w", ref, undefinedHint(s.baseUnset), err))
	}
	pinned, shown, dt, err := c.opt.Resolver.ResolveImageConfig(ctx, ref, c.stagePlatform(s))
	if err != nil {
		hint := undefinedHint(s.baseUnset)
		if s.unregistered {
			hint = fmt.Sprintf(" (--from=%s is neither a stage nor a resolvable image; %s)", ref, c.stageNames())
		}
		return c.errAt(s.st.Location, fmt.Errorf("resolving image %s%s: %w", ref, hint, err))
	}
	if pinned == "" {
		pinned = ref
	}
	if shown == "" {
		shown = pinned
	}
	var img v1.ConfigFile
	if err := json.Unmarshal(dt, &img); err != nil {
		return c.errAt(s.st.Location, fmt.Errorf("parsing image config of %s: %w", pinned, err))
	}
	s.pinned, s.shown = pinned, shown
	s.baseImg = &img
	s.startInterval = rawStartInterval(dt)
	s.baseLayers = len(img.RootFS.DiffIDs)
	if s.baseLayers == 0 {
		// schema1 images have no diff ids: count layers from the history.
		for _, h := range img.History {
			if !h.EmptyLayer {
				s.baseLayers++
			}
		}
	}
	return nil
}

// normalizeHistory makes the base image's history describe exactly layers
// layers: extra non-empty entries (from the bottom) become empty, missing
// ones are appended, as BuildKit's exporter does.
func normalizeHistory(hist []v1.History, layers int, pinned string) []v1.History {
	out := make([]v1.History, 0, len(hist))
	n := 0
	for _, h := range hist {
		if !h.EmptyLayer {
			if n >= layers {
				h.EmptyLayer = true
			} else {
				n++
			}
		}
		out = append(out, h)
	}
	for ; n < layers; n++ {
		out = append(out, v1.History{CreatedBy: "pulled from " + pinned, Comment: synthesizeComment})
	}
	return out
}

// emptyImage is the config of FROM scratch.
func emptyImage(p llb.Platform) v1.ConfigFile {
	img := v1.ConfigFile{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion}
	img.RootFS.Type = "layers"
	img.Config.WorkingDir = "/"
	if p.OS != "windows" {
		img.Config.Env = []string{"PATH=" + defaultPathEnv}
	}
	return img
}

// cloneConfig deep-copies the parts of a config that dispatch mutates.
func cloneConfig(src v1.ConfigFile) v1.ConfigFile {
	img := src
	img.Config.Env = append([]string(nil), src.Config.Env...)
	img.Config.Cmd = cloneSlice(src.Config.Cmd)
	img.Config.Entrypoint = cloneSlice(src.Config.Entrypoint)
	img.Config.OnBuild = cloneSlice(src.Config.OnBuild)
	img.Config.Shell = cloneSlice(src.Config.Shell)
	img.Config.ExposedPorts = cloneSet(src.Config.ExposedPorts)
	img.Config.Volumes = cloneSet(src.Config.Volumes)
	if src.Config.Labels != nil {
		img.Config.Labels = make(map[string]string, len(src.Config.Labels))
		for k, v := range src.Config.Labels {
			img.Config.Labels[k] = v
		}
	}
	if src.Config.Healthcheck != nil {
		hc := *src.Config.Healthcheck
		hc.Test = cloneSlice(hc.Test)
		img.Config.Healthcheck = &hc
	}
	img.History = append([]v1.History(nil), src.History...)
	img.RootFS.DiffIDs = append([]v1.Hash(nil), src.RootFS.DiffIDs...)
	img.OSFeatures = cloneSlice(src.OSFeatures)
	return img
}

func cloneSlice(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}

func cloneSet(m map[string]struct{}) map[string]struct{} {
	if m == nil {
		return nil
	}
	out := make(map[string]struct{}, len(m))
	for k := range m {
		out[k] = struct{}{}
	}
	return out
}

// targetSuffix is what BuildKit appends to a stage's platform in a
// progress name when the stage declared TARGET* args that name another
// platform: "->arm64" (a cross-compiling $BUILDPLATFORM stage) or
// "->os/arch" for another OS.
func targetSuffix(base llb.Platform, env envList) string {
	var t llb.Platform
	set := false
	if v, ok := env.Get("TARGETPLATFORM"); ok {
		if p, err := parsePlatform(v); err == nil {
			t, set = p, true
		}
	}
	for k, f := range map[string]*string{"TARGETOS": &t.OS, "TARGETARCH": &t.Architecture, "TARGETVARIANT": &t.Variant} {
		if v, ok := env.Get(k); ok {
			*f, set = v, true
		}
	}
	if !set {
		return ""
	}
	if t.OS == "" {
		t.OS = base.OS
	}
	if t.Architecture == "" {
		t.Architecture = base.Architecture
	}
	t = t.Normalize()
	switch {
	case t.OS != base.OS:
		return "->" + t.String()
	case t.Architecture != base.Architecture:
		if t.Variant != "" {
			return "->" + t.Architecture + "/" + t.Variant
		}
		return "->" + t.Architecture
	}
	return ""
}

// prefix formats a progress name like BuildKit: "[stage 2/4] RUN ...".
func (s *stage) prefix(str string) string {
	if s.cmdTotal == 0 {
		return str
	}
	out := "["
	if s.showPlat {
		out += s.plat.String() + targetSuffix(s.plat, s.env) + " "
	}
	if s.display != "" {
		out += s.display + " "
	}
	s.cmdIndex++
	out += fmt.Sprintf("%*d/%d] ", int(1+math.Log10(float64(s.cmdTotal))), s.cmdIndex, s.cmdTotal)
	if s.cmdOnBuild {
		out += "ONBUILD "
	}
	return out + str
}

func (c *converter) meta(name string, rng []parser.Range, createdBy string) llb.Meta {
	m := llb.Meta{Name: name, Location: c.location(rng), IgnoreCache: c.opt.NoCache || c.noCacheStage}
	if createdBy != "" {
		m.Description = map[string]string{createdByKey: createdBy}
	}
	return m
}

// buildContext is the one LocalOp of the build.
func (c *converter) buildContext() *llb.Vertex {
	if c.context == nil {
		c.context = llb.NewVertex(llb.LocalOp{Name: contextName, ExcludePatterns: cloneSlice(c.opt.ExcludePatterns)}, nil,
			llb.Meta{Name: "[internal] load build context", IgnoreCache: c.opt.NoCache})
	}
	return c.context
}

// stageNoCache reports whether --no-cache-filter names stage s.
func (c *converter) stageNoCache(s *stage) bool {
	for _, n := range c.opt.NoCacheStages {
		if s.name != "" && strings.EqualFold(n, s.name) {
			return true
		}
	}
	return false
}

// dispatch converts stage s (and the stages it needs first).
func (c *converter) dispatch(ctx context.Context, s *stage) error {
	if s.dispatched {
		return nil
	}
	if s.dispatching {
		return c.errAt(s.st.Location, fmt.Errorf("circular dependency on stage %q", s.display))
	}
	s.dispatching = true
	defer func() { s.dispatching = false }()
	// --no-cache-filter: the steps of this stage (not of the stages it
	// needs, which set their own) run again.
	outer := c.noCacheStage
	defer func() { c.noCacheStage = outer }()
	c.noCacheStage = c.stageNoCache(s)

	var onbuild []string
	if s.base != nil {
		if err := c.dispatch(ctx, s.base); err != nil {
			return err
		}
		b := s.base
		s.state = b.state
		s.plat = b.plat
		s.showPlat = c.opt.ShowPlatform
		s.img = cloneConfig(b.img)
		s.img.Config.OnBuild = nil
		s.env = b.env
		s.dir = b.dir
		s.user = b.user
		s.buildArgs = append(s.buildArgs, b.buildArgs...)
		s.baseLayers = b.baseLayers
		s.startInterval = b.startInterval
		s.workdirSet = b.workdirSet
		for _, cmd := range b.cmds {
			if ob, ok := cmd.Command.(*instructions.OnbuildCommand); ok {
				onbuild = append(onbuild, ob.Expression)
			}
		}
	} else {
		s.plat = c.stagePlatform(s)
		s.showPlat = c.opt.ShowPlatform
		if s.baseName == emptyImageName {
			s.img = emptyImage(s.plat)
		} else {
			if err := c.resolve(ctx, s); err != nil {
				return err
			}
			c.lintBasePlatform(s.baseName, s.plat, s.baseImg, s.st.Location)
			s.img = cloneConfig(*s.baseImg)
			s.img.Created = v1.Time{}
			s.img.History = normalizeHistory(s.img.History, s.baseLayers, s.pinned)
			if s.baseLayers > 0 {
				s.state = llb.NewVertex(llb.ImageOp{Ref: s.pinned, Platform: s.plat}, nil,
					c.meta(s.prefix("FROM "+s.shown), s.st.Location, ""))
			}
			if s.named != nil {
				s.state = s.named
				s.commit(s.named.Meta().Description[createdByKey], true)
			}
			onbuild = s.img.Config.OnBuild
		}
		s.dir = "/"
	}
	if len(onbuild) > 0 {
		if err := c.addOnBuild(s, onbuild); err != nil {
			return err
		}
	}
	s.img.Config.OnBuild = nil

	// Every stage has a PATH.
	if _, ok := envList(s.img.Config.Env).Get("PATH"); !ok && s.plat.OS != "windows" {
		s.img.Config.Env = append(s.img.Config.Env, "PATH="+defaultPathEnv)
	}
	for _, kv := range s.img.Config.Env {
		k, v := splitKV(kv)
		s.env = s.env.set(k, v)
	}
	if wd := s.img.Config.WorkingDir; wd != "" {
		s.dir = normalizePath(s.dir, wd, false)
		s.img.Config.WorkingDir = s.dir
	}
	if s.img.Config.User != "" {
		s.user = s.img.Config.User
	}

	for i := range s.cmds {
		cmd := s.cmds[i]
		for _, src := range cmd.sources {
			if src != nil {
				if err := c.dispatchSource(ctx, s, cmd, src); err != nil {
					return err
				}
			}
		}
		s.cmdOnBuild = cmd.onBuild
		if err := c.dispatchCommand(s, cmd); err != nil {
			return c.errAt(cmd.Location(), err)
		}
	}
	s.dispatched = true
	return nil
}

// dispatchSource converts the stage a COPY --from reads, which must come
// before s.
func (c *converter) dispatchSource(ctx context.Context, s *stage, cmd command, src *stage) error {
	if src.unregistered {
		if !src.dispatched {
			src.plat = c.platform
			if src.baseName == emptyImageName {
				src.state = nil
			} else {
				if err := c.resolve(ctx, src); err != nil {
					return err
				}
				if src.baseLayers > 0 {
					src.state = llb.NewVertex(llb.ImageOp{Ref: src.pinned, Platform: src.plat}, nil,
						c.meta("FROM "+src.shown, src.st.Location, ""))
				}
				if src.named != nil {
					src.state = src.named
				}
			}
			src.dispatched = true
		}
		return nil
	}
	if src == s {
		return c.errAt(cmd.Location(), fmt.Errorf("%s %s=%s names the stage it is in: a stage cannot %s from itself", strings.ToUpper(cmd.Name()), fromFlag(cmd), strings.Trim(stageRef(src), `"`), fromVerb(cmd)))
	}
	if src.index >= s.index {
		if cp, ok := cmd.Command.(*instructions.CopyCommand); ok {
			// BuildKit's words: the --from value as written.
			name := s.name
			if name == "" {
				name = fmt.Sprintf("stage-%d", s.index)
			}
			return c.errAt(cmd.Location(), fmt.Errorf("cannot copy from stage %q, it needs to be defined before current stage %q", cp.From, name))
		}
		return c.errAt(cmd.Location(), fmt.Errorf("cannot use stage %s from %s, it needs to be defined before current stage %s", stageRef(src), strings.ToUpper(cmd.Name()), stageRef(s)))
	}
	return c.dispatch(ctx, src)
}

// stageRef names a stage as the user does: its AS name, else its index.
func stageRef(s *stage) string {
	if s.name != "" {
		return strconv.Quote(s.name)
	}
	return strconv.Itoa(s.index)
}

// fromFlag is the flag of a command that names its --from source.
func fromFlag(cmd command) string {
	if _, ok := cmd.Command.(*instructions.RunCommand); ok {
		return "--mount=from"
	}
	return "--from"
}

// fromVerb is what a command does with its --from source.
func fromVerb(cmd command) string {
	if _, ok := cmd.Command.(*instructions.RunCommand); ok {
		return "mount"
	}
	return "copy"
}

// addOnBuild parses ONBUILD triggers inherited from the base and puts them
// before the stage's own commands.
func (c *converter) addOnBuild(s *stage, triggers []string) error {
	cmds := make([]command, 0, len(triggers))
	for _, t := range triggers {
		res, err := parser.Parse(strings.NewReader(t))
		if err != nil {
			return c.errAt(s.st.Location, fmt.Errorf("parsing ONBUILD trigger %q: %w", t, err))
		}
		if len(res.AST.Children) != 1 {
			return c.errAt(s.st.Location, errors.New("onbuild trigger should be a single expression"))
		}
		node := res.AST.Children[0]
		start, end := lines(s.st.Location)
		node.StartLine, node.EndLine = start, end
		ic, err := instructions.ParseCommand(node)
		if err != nil {
			return c.errAt(s.st.Location, fmt.Errorf("parsing ONBUILD trigger %q: %w", t, err))
		}
		cmd, err := c.toCommand(ic)
		if err != nil {
			return c.errAt(s.st.Location, err)
		}
		cmd.onBuild = true
		cmds = append(cmds, cmd)
	}
	s.cmds = append(cmds, s.cmds...)
	s.cmdTotal += len(cmds)
	return nil
}

// finalize makes the result of the target stage.
func (c *converter) finalize(s *stage) *Result {
	img := s.img
	if c.explicit {
		same := img.OS == c.platform.OS && img.Architecture == c.platform.Architecture
		img.OS = c.platform.OS
		img.Architecture = c.platform.Architecture
		if c.platform.Variant != "" || !same {
			img.Variant = c.platform.Variant
		}
		// The base's os.version stays unless the platform names one
		// (BuildKit testMaintainBaseOSVersion).
		if c.platform.OSVersion != "" || !same {
			img.OSVersion = c.platform.OSVersion
		}
	} else if img.OS == "" && img.Architecture == "" {
		img.OS, img.Architecture, img.Variant, img.OSVersion = s.plat.OS, s.plat.Architecture, s.plat.Variant, s.plat.OSVersion
	}
	if img.RootFS.Type == "" {
		img.RootFS.Type = "layers"
	}
	target := s.name
	if target == "" {
		target = fmt.Sprintf("stage-%d", s.index)
	}
	res := &Result{Target: target, State: s.state, Config: img}
	if img.Config.Healthcheck != nil {
		res.HealthcheckStartInterval = s.startInterval
	}
	return res
}

// normalizePath joins p to parent when p is relative, cleans it, and keeps
// a trailing slash (or "/.") when keepSlash is set, as BuildKit's
// system.NormalizePath.
func normalizePath(parent, p string, keepSlash bool) string {
	orig := p
	if parent == "" {
		parent = "/"
	}
	if !strings.HasPrefix(parent, "/") {
		parent = "/" + parent
	}
	if p == "" {
		p = parent
	}
	if !strings.HasPrefix(p, "/") {
		p = parent + "/" + p
	}
	p = cleanPath(p)
	if keepSlash {
		if strings.HasSuffix(orig, "/") && !strings.HasSuffix(p, "/") {
			p += "/"
		} else if strings.HasSuffix(orig, "/.") {
			if p != "/" {
				p += "/"
			}
			p += "."
		}
	}
	return p
}
