package dockerfile

import (
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/builderdev/builder/llb"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// commit appends a history entry; layer is false for an instruction that
// only changes the config.
func (s *stage) commit(msg string, layer bool) {
	s.img.History = append(s.img.History, v1History(msg, !layer))
}

// dispatchCommand applies one instruction to the stage.
func (c *converter) dispatchCommand(s *stage, cmd command) error {
	// A `# check=skip=RULE` comment right above the instruction applies
	// to it only, as in BuildKit.
	if c.lint != nil {
		saved := c.lint
		c.lint = c.lint.WithMergedConfigFromComments(cmd.Comments())
		defer func() { c.lint = saved }()
	}
	_, isArg := cmd.Command.(*instructions.ArgCommand)
	if ex, ok := cmd.Command.(instructions.SupportsSingleWordExpansion); ok && !isArg {
		unmatched := map[string]struct{}{}
		err := ex.Expand(func(word string) (string, error) {
			res, err := c.shlex.ProcessWordWithMatches(word, s.env)
			for k := range res.Unmatched {
				unmatched[k] = struct{}{}
			}
			return res.Result, err
		})
		if err != nil {
			return err
		}
		c.lintUndefined(s, cmd.Command, unmatched)
	}
	if ex, ok := cmd.Command.(instructions.SupportsSingleWordExpansionRaw); ok {
		err := ex.ExpandRaw(func(word string) (string, error) {
			lex := shell.NewLex('\\')
			lex.SkipProcessQuotes = true
			w, _, err := lex.ProcessWord(word, s.env)
			return w, err
		})
		if err != nil {
			return err
		}
	}
	c.lintCommand(s, cmd.Command)

	switch x := cmd.Command.(type) {
	case *instructions.MaintainerCommand:
		s.img.Author = x.Maintainer
		s.commit("MAINTAINER "+x.Maintainer, false)
	case *instructions.EnvCommand:
		msg := "ENV"
		for _, e := range x.Env {
			msg += " " + e.String()
			s.env = s.env.set(e.Key, e.Value)
			s.img.Config.Env = addEnv(s.img.Config.Env, e.Key, e.Value)
		}
		s.commit(msg, false)
	case *instructions.RunCommand:
		return c.dispatchRun(s, x, cmd)
	case *instructions.WorkdirCommand:
		return c.dispatchWorkdir(s, x)
	case *instructions.AddCommand:
		return c.dispatchCopy(s, copyConfig{
			params: x.SourcesAndDest, exclude: x.ExcludePatterns, fromContext: true, isAdd: true,
			code: x.String(), chown: x.Chown, chmod: x.Chmod, checksum: x.Checksum, unpack: x.Unpack, loc: x.Location(),
			keepGitDir: x.KeepGitDir, link: x.Link,
		})
	case *instructions.CopyCommand:
		cfg := copyConfig{
			params: x.SourcesAndDest, exclude: x.ExcludePatterns, fromContext: true,
			code: x.String(), chown: x.Chown, chmod: x.Chmod, parents: x.Parents, loc: x.Location(),
			link: x.Link,
		}
		if len(cmd.sources) > 0 && cmd.sources[0] != nil {
			cfg.fromContext = false
			cfg.source = cmd.sources[0].state
		}
		return c.dispatchCopy(s, cfg)
	case *instructions.LabelCommand:
		if s.img.Config.Labels == nil {
			s.img.Config.Labels = make(map[string]string, len(x.Labels))
		}
		msg := "LABEL"
		for _, l := range x.Labels {
			s.img.Config.Labels[l.Key] = l.Value
			msg += " " + l.String()
		}
		s.commit(msg, false)
	case *instructions.OnbuildCommand:
		s.img.Config.OnBuild = append(s.img.Config.OnBuild, x.Expression)
	case *instructions.CmdCommand:
		args := x.CmdLine
		if x.PrependShell {
			args = withShell(s.img, args)
		}
		s.img.Config.Cmd = args
		s.img.Config.ArgsEscaped = true
		s.cmdSet = true
		s.commit(fmt.Sprintf("CMD %q", args), false)
	case *instructions.EntrypointCommand:
		args := x.CmdLine
		if x.PrependShell {
			args = withShell(s.img, args)
		}
		s.img.Config.Entrypoint = args
		if !s.cmdSet {
			s.img.Config.Cmd = nil
		}
		s.commit(fmt.Sprintf("ENTRYPOINT %q", args), false)
	case *instructions.HealthCheckCommand:
		h := x.Health
		s.img.Config.Healthcheck = &v1HealthConfig{
			Test: cloneSlice(h.Test), Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, Retries: h.Retries,
		}
		s.startInterval = h.StartInterval
		s.commit(fmt.Sprintf("HEALTHCHECK {Test:%v Interval:%v Timeout:%v StartPeriod:%v StartInterval:%v Retries:%d}",
			h.Test, h.Interval, h.Timeout, h.StartPeriod, h.StartInterval, h.Retries), false)
	case *instructions.ExposeCommand:
		var specs []string
		for _, p := range x.Ports {
			ps, err := c.shlex.ProcessWords(p, s.env)
			if err != nil {
				return err
			}
			specs = append(specs, ps...)
		}
		c.lintExpose(specs, x.Location())
		ports, err := parsePorts(specs)
		if err != nil {
			return err
		}
		if s.img.Config.ExposedPorts == nil {
			s.img.Config.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range ports {
			s.img.Config.ExposedPorts[p] = struct{}{}
		}
		s.commit(fmt.Sprintf("EXPOSE %v", ports), false)
	case *instructions.UserCommand:
		s.user = x.User
		s.img.Config.User = x.User
		s.commit("USER "+x.User, false)
	case *instructions.VolumeCommand:
		if s.img.Config.Volumes == nil {
			s.img.Config.Volumes = map[string]struct{}{}
		}
		for _, v := range x.Volumes {
			if v == "" {
				return errors.New("VOLUME specified can not be an empty string")
			}
			s.img.Config.Volumes[v] = struct{}{}
		}
		s.commit(fmt.Sprintf("VOLUME %v", x.Volumes), false)
	case *instructions.StopSignalCommand:
		if err := checkSignal(x.Signal); err != nil {
			return err
		}
		s.img.Config.StopSignal = x.Signal
		s.commit("STOPSIGNAL "+x.Signal, false)
	case *instructions.ShellCommand:
		s.img.Config.Shell = cloneSlice(x.Shell)
		s.commit(fmt.Sprintf("SHELL %v", x.Shell), false)
	case *instructions.ArgCommand:
		return c.dispatchArg(s, x)
	default:
		return fmt.Errorf("unsupported instruction %s", cmd.Name())
	}
	return nil
}

// dispatchArg declares stage args: a --build-arg wins over the default; an
// ARG without default inherits a global ARG's value. Values are visible to
// later instructions and RUN, never persisted in the config's Env.
func (c *converter) dispatchArg(s *stage, x *instructions.ArgCommand) error {
	parts := make([]string, 0, len(x.Args))
	for _, arg := range x.Args {
		c.consume(arg.Key)
		bv, hasValue := c.opt.BuildArgs[arg.Key]
		hasDefault := arg.Value != nil
		if !hasDefault && !hasValue {
			if v, ok := c.global.Get(arg.Key); ok {
				arg.Value = &v
			}
		}
		if hasValue {
			arg.Value = &bv
		} else if hasDefault {
			v, _, err := c.shlex.ProcessWord(*arg.Value, s.env)
			if err != nil {
				return err
			}
			arg.Value = &v
		}
		if arg.Value != nil {
			s.env = s.env.set(arg.Key, *arg.Value)
		}
		s.buildArgs = append(s.buildArgs, arg)
		p := arg.Key
		if arg.Value != nil {
			p += "=" + *arg.Value
		}
		parts = append(parts, p)
	}
	s.commit("ARG "+strings.Join(parts, " "), false)
	return nil
}

func withShell(img v1ConfigFile, args []string) []string {
	sh := cloneSlice(img.Config.Shell)
	if len(sh) == 0 {
		if img.OS == "windows" {
			sh = []string{"cmd", "/S", "/C"}
		} else {
			sh = []string{"/bin/sh", "-c"}
		}
	}
	return append(sh, strings.Join(args, " "))
}

func uppercaseCmd(s string) string {
	p := strings.SplitN(s, " ", 2)
	p[0] = strings.ToUpper(p[0])
	return strings.Join(p, " ")
}

// processCmdEnv expands variables in a display name, keeping the original
// on error.
func processCmdEnv(lex *shell.Lex, cmd string, env shell.EnvGetter) string {
	w, _, err := lex.ProcessWord(cmd, env)
	if err != nil {
		return cmd
	}
	return w
}

// runCommandString is the history text of a RUN: "|N K=v ... args".
func runCommandString(args []string, buildArgs []instructions.KeyValuePairOptional, env shell.EnvGetter) string {
	var tmp []string
	idx := map[string]int{}
	for _, a := range buildArgs {
		v, ok := env.Get(a.Key)
		if !ok {
			v = a.ValueString()
		}
		if i, ok := idx[a.Key]; ok {
			tmp[i] = a.Key + "=" + v
		} else {
			idx[a.Key] = len(tmp)
			tmp = append(tmp, a.Key+"="+v)
		}
	}
	if len(tmp) > 0 {
		tmp = append([]string{fmt.Sprintf("|%d", len(tmp))}, tmp...)
	}
	return strings.Join(append(tmp, args...), " ")
}

// parseChown splits "user[:group]" like BuildKit's llb.WithUser; "root" is
// uid 0.
func parseChown(s string) *llb.Chown {
	if s == "" {
		return nil
	}
	u, g, _ := strings.Cut(s, ":")
	if u == "root" {
		u = "0"
	}
	if g == "root" {
		g = "0"
	}
	return &llb.Chown{User: u, Group: g}
}

// rootInput returns the inputs and base index of an op on the stage's root.
func rootInput(state *llb.Vertex) ([]*llb.Vertex, int) {
	if state == nil {
		return nil, -1
	}
	return []*llb.Vertex{state}, 0
}

// inputs dedupes the extra inputs of an op.
type inputs struct {
	list []*llb.Vertex
	idx  map[*llb.Vertex]int
}

func (in *inputs) add(v *llb.Vertex) int {
	if in.idx == nil {
		in.idx = map[*llb.Vertex]int{}
	}
	if i, ok := in.idx[v]; ok {
		return i
	}
	in.list = append(in.list, v)
	in.idx[v] = len(in.list) - 1
	return len(in.list) - 1
}

// addOwn is add, except that a nil v (the empty tree) always gets a slot of
// its own instead of sharing one with another nil input.
func (in *inputs) addOwn(v *llb.Vertex) int {
	if v == nil {
		in.list = append(in.list, nil)
		return len(in.list) - 1
	}
	return in.add(v)
}

// inlineDocument is a tree on scratch holding one heredoc file, for a RUN
// to mount or a COPY to copy from.
func (c *converter) inlineDocument(p string, mode os.FileMode, data string, loc llb.Location) *llb.Vertex {
	mk := &llb.Mkfile{Path: p, Mode: mode, Data: []byte(data)}
	return llb.NewVertex(llb.FileOp{Base: -1, Actions: []llb.FileAction{{Mkfile: mk}}}, nil,
		llb.Meta{Name: "[internal] preparing inline document", Location: loc, IgnoreCache: c.opt.NoCache})
}

func (c *converter) dispatchRun(s *stage, x *instructions.RunCommand, cmd command) error {
	name := x.String()
	args := x.CmdLine
	ins := &inputs{}
	// The root is input 0 even when it is the empty tree.
	ins.addOwn(s.state)
	mounts := []llb.Mount{{Input: 0, Dest: "/"}}

	if len(x.Files) > 0 {
		if len(args) != 1 || !x.PrependShell {
			return fmt.Errorf("parsing produced an invalid run command: %v", args)
		}
		if hd := parser.MustParseHeredoc(args[0]); hd != nil {
			data := x.Files[0].Data
			if x.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if s.img.OS != "windows" && strings.HasPrefix(data, "#!") {
				f := path.Clean("/" + x.Files[0].Name)
				doc := c.inlineDocument(f, 0o755, data, c.location(x.Location()))
				mounts = append(mounts, llb.Mount{Input: ins.add(doc), Selector: "/", Dest: "/dev/pipes/", Readonly: true})
				args = []string{path.Join("/dev/pipes/", f)}
			} else {
				args = []string{data}
			}
			name += fmt.Sprintf(" (%s)", summarizeHeredoc(x.Files[0].Data))
		} else {
			var b strings.Builder
			b.WriteString(args[0])
			for _, f := range x.Files {
				b.WriteByte('\n')
				b.WriteString(f.Data)
				b.WriteString(f.Name)
			}
			args = []string{b.String()}
		}
	}
	if x.PrependShell {
		args = withShell(s.img, args)
	}

	var network llb.NetMode
	switch n := instructions.GetNetwork(x); n {
	case instructions.NetworkDefault:
		network = c.opt.DefaultNetwork
	case instructions.NetworkHost:
		// As in BuildKit, asking for the host's network explicitly is an
		// entitlement, even though the default network is the host's too.
		if !c.opt.AllowNetworkHost {
			return errors.New("RUN --network=host is not allowed: the build needs --allow network.host")
		}
		network = llb.NetHost
	case instructions.NetworkNone:
		network = llb.NetNone
	default:
		return fmt.Errorf("unsupported network mode %q", n)
	}

	var security llb.SecurityMode
	switch sec := instructions.GetSecurity(x); sec {
	case instructions.SecuritySandbox, "":
	case instructions.SecurityInsecure:
		if !c.opt.AllowInsecure {
			return errors.New("RUN --security=insecure is not allowed: the build needs --allow security.insecure")
		}
		security = llb.SecurityInsecure
	default:
		return fmt.Errorf("unsupported security mode %q", sec)
	}

	ms, secretEnvs, err := c.runMounts(s, x, cmd, ins)
	if err != nil {
		return err
	}
	mounts = append(mounts, ms...)

	raw := *c.shlex
	raw.RawQuotes, raw.RawEscapes, raw.SkipUnsetEnv = true, true, true
	displayEnv := s.env
	for _, k := range secretEnvs {
		displayEnv = displayEnv.set(k, "****")
	}
	display := s.prefix(uppercaseCmd(processCmdEnv(&raw, name, displayEnv)))
	createdBy := "RUN " + runCommandString(args, s.buildArgs, s.env) + " # buildkit"

	op := llb.ExecOp{
		Args:     cloneSlice(args),
		Env:      s.env.slice(),
		Cwd:      s.dir,
		User:     s.user,
		Hostname: c.opt.BuildArgs["BUILDKIT_SANDBOX_HOSTNAME"],
		Network:  network,
		Mounts:   mounts,
		Security: security,
		ProxyEnv: proxyEnv(c.opt.BuildArgs),
		Platform: s.plat,
		// --add-host, --shm-size, --ulimit of the build.
		ExtraHosts: slices.Clone(c.opt.ExtraHosts),
		ShmSize:    c.opt.ShmSize,
		Ulimits:    slices.Clone(c.opt.Ulimits),
	}
	s.state = llb.NewVertex(op, ins.list, c.meta(display, x.Location(), createdBy))
	s.commit(createdBy, true)
	return nil
}

func summarizeHeredoc(doc string) string {
	doc = strings.TrimSpace(doc)
	ls := strings.Split(strings.ReplaceAll(doc, "\r\n", "\n"), "\n")
	if len(ls) > 1 {
		return ls[0] + "..."
	}
	return ls[0]
}

// runMounts converts RUN --mount flags. It returns the names of secret env
// vars, which are masked in display names.
func (c *converter) runMounts(s *stage, x *instructions.RunCommand, cmd command, ins *inputs) ([]llb.Mount, []string, error) {
	var out []llb.Mount
	var secretEnvs []string
	// ssh mounts without a target are numbered among ssh mounts only, as
	// BuildKit's llb does (/run/buildkit/ssh_agent.N).
	sshCount := 0
	for i, m := range instructions.GetMounts(x) {
		var src *stage
		if i < len(cmd.sources) {
			src = cmd.sources[i]
		}
		target := m.Target
		if target != "" && !path.IsAbs(target) {
			target = path.Join("/", s.dir, target)
		}
		target = path.Clean(target)
		mode := func() *uint32 {
			if m.Mode == nil {
				return nil
			}
			v := uint32(*m.Mode)
			return &v
		}
		id := func(p *uint64) *int {
			if p == nil {
				return nil
			}
			v := int(*p)
			return &v
		}
		switch m.Type {
		case instructions.MountTypeSecret:
			sid := m.CacheID
			if sid == "" {
				sid = m.Source
			}
			if sid == "" {
				sid = path.Base(target)
			}
			mt := llb.Mount{Input: -1, Type: llb.MountSecret, SecretID: sid, Required: m.Required, Mode: mode(), UID: id(m.UID), GID: id(m.GID), Readonly: true}
			if m.Env != nil {
				mt.SecretEnv = *m.Env
				secretEnvs = append(secretEnvs, *m.Env)
			}
			if m.Target != "" || m.Env == nil {
				if m.Target == "" {
					target = "/run/secrets/" + sid
				}
				mt.Dest = target
			}
			if mt.Mode == nil {
				v := uint32(0o400)
				mt.Mode = &v
			}
			out = append(out, mt)
			continue
		case instructions.MountTypeSSH:
			sid := m.CacheID
			if sid == "" {
				sid = "default"
			}
			if m.Target == "" {
				target = "/run/buildkit/ssh_agent." + strconv.Itoa(sshCount)
			}
			sshCount++
			mt := llb.Mount{Input: -1, Type: llb.MountSSH, SecretID: sid, Dest: target, Required: m.Required, Mode: mode(), UID: id(m.UID), GID: id(m.GID), Readonly: true}
			if mt.Mode == nil {
				v := uint32(0o600)
				mt.Mode = &v
			}
			out = append(out, mt)
			continue
		}
		if target == "/" || target == "." {
			return nil, nil, fmt.Errorf("invalid mount target %q", m.Target)
		}
		mt := llb.Mount{Input: -1, Dest: target, Readonly: m.ReadOnly}
		if sp := path.Join("/", m.Source); sp != "/" {
			mt.Selector = sp
		}
		switch m.Type {
		case instructions.MountTypeTmpfs:
			mt.Type = llb.MountTmpfs
			mt.TmpfsSize = m.SizeLimit
			mt.Selector = ""
		case instructions.MountTypeCache:
			mt.Type = llb.MountCache
			mt.CacheID = m.CacheID
			if mt.CacheID == "" {
				mt.CacheID = target
			}
			switch m.CacheSharing {
			case instructions.MountSharingPrivate:
				mt.CacheSharing = llb.SharingPrivate
			case instructions.MountSharingLocked:
				mt.CacheSharing = llb.SharingLocked
			default:
				mt.CacheSharing = llb.SharingShared
			}
			mt.Mode, mt.UID, mt.GID = mode(), id(m.UID), id(m.GID)
			if m.From != "" && src != nil {
				if err := c.checkSource(s, src, m.From); err != nil {
					return nil, nil, err
				}
				mt.Input = ins.add(src.state)
			}
		default: // bind
			if m.From == "" {
				mt.Input = ins.add(c.buildContext())
			} else {
				if err := c.checkSource(s, src, m.From); err != nil {
					return nil, nil, err
				}
				mt.Input = ins.add(src.state)
			}
		}
		out = append(out, mt)
	}
	return out, secretEnvs, nil
}

func (c *converter) checkSource(s, src *stage, from string) error {
	if src == nil || !src.dispatched {
		return fmt.Errorf("cannot mount from stage %q, stage needs to be defined before current command in stage %q", from, s.display)
	}
	return nil
}

func (c *converter) dispatchWorkdir(s *stage, x *instructions.WorkdirCommand) error {
	wd := normalizePath(s.img.Config.WorkingDir, x.Path, false)
	s.img.Config.WorkingDir = wd
	s.dir = wd
	if wd == "/" {
		s.commit("WORKDIR "+wd, false)
		return nil
	}
	display := s.prefix(uppercaseCmd(processCmdEnv(c.shlex, x.String(), s.env)))
	createdBy := "WORKDIR " + wd
	in, base := rootInput(s.state)
	op := llb.FileOp{Base: base, Actions: []llb.FileAction{{Mkdir: &llb.Mkdir{
		Path: wd, Mode: 0o755, MakeParents: true, Chown: parseChown(s.img.Config.User), Timestamp: c.epochUnix(),
	}}}}
	s.state = llb.NewVertex(op, in, c.meta(display, x.Location(), createdBy))
	s.commit(createdBy, true)
	return nil
}

// epochUnix is SOURCE_DATE_EPOCH in Unix seconds, nil when unset.
func (c *converter) epochUnix() *int64 {
	if c.epoch == nil {
		return nil
	}
	n := c.epoch.Unix()
	return &n
}

type copyConfig struct {
	params      instructions.SourcesAndDest
	exclude     []string
	fromContext bool
	source      *llb.Vertex
	isAdd       bool
	code        string
	chown       string
	chmod       string
	parents     bool
	checksum    string
	unpack      *bool
	loc         []parser.Range
	keepGitDir  *bool
	// link is COPY/ADD --link (see linkCopy).
	link bool
}

var symbolicMode = regexp.MustCompile(`^[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+(?:,[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+)*$`)

func checkChmod(s string) error {
	nonOctal := fmt.Errorf("invalid chmod parameter: '%v'. it should be octal string and between 0 and 07777", s)
	if p, err := strconv.ParseUint(s, 8, 32); err == nil {
		if p > 0o7777 {
			return nonOctal
		}
		return nil
	}
	if strings.Trim(s, "0123456789") == "" {
		return nonOctal
	}
	if !symbolicMode.MatchString(s) {
		return fmt.Errorf("invalid chmod parameter %q: neither octal nor a symbolic mode", s)
	}
	return nil
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

func isGit(s string) bool {
	_, ok, _ := parseGitRef(s)
	return ok
}

func (c *converter) dispatchCopy(s *stage, cfg copyConfig) error {
	dest := cfg.params.DestPath
	if dest == "" || dest == "." {
		dest = "./"
	}
	dest = normalizePath(s.dir, dest, true)
	if cfg.chmod != "" {
		if err := checkChmod(cfg.chmod); err != nil {
			return err
		}
	}
	kind := "COPY"
	if cfg.isAdd {
		kind = "ADD"
	}
	if cfg.checksum != "" {
		if len(cfg.params.SourcePaths) != 1 {
			return errors.New("checksum can't be specified for multiple sources")
		}
		if !isURL(cfg.params.SourcePaths[0]) && !isGit(cfg.params.SourcePaths[0]) {
			return errors.New("checksum requires HTTP(S) or Git sources")
		}
	}
	msg := kind
	if cfg.parents {
		msg += " --parents"
	}
	if cfg.chown != "" {
		msg += " --chown=" + cfg.chown
	}
	if cfg.chmod != "" {
		msg += " --chmod=" + cfg.chmod
	}
	if cfg.link && chownByName(cfg.chown) {
		return fmt.Errorf("--chown=%s: user and group names can't be resolved when used with --link, use numeric uid[:gid] instead", cfg.chown)
	}
	cmdText := uppercaseCmd(processCmdEnv(c.shlex, cfg.code, s.env))
	display := s.prefix(cmdText)

	// A --link copy is made on scratch, so neither its digest nor its
	// cache key depends on the stage's root (BuildKit falls back to a
	// plain copy with --chmod).
	link := cfg.link && cfg.chmod == ""
	in, base := rootInput(s.state)
	if link {
		in, base = nil, -1
	}
	ins := &inputs{}
	for _, v := range in {
		ins.add(v)
	}
	var actions []llb.FileAction
	chown := parseChown(cfg.chown)
	unpack := cfg.isAdd
	if cfg.unpack != nil {
		unpack = *cfg.unpack
	}
	srcIdx := -1
	for _, src := range cfg.params.SourcePaths {
		msg += " " + src
		remote, ok, err := c.remoteSource(remoteCopy{cfg: cfg, dest: dest, chown: chown, display: display}, src, ins.add)
		if err != nil {
			return err
		}
		if ok {
			actions = append(actions, *remote)
			continue
		}
		if cfg.fromContext && cfg.source == nil {
			c.lintCopyIgnored(cfg.isAdd, src, cfg.loc)
		}
		if srcIdx < 0 {
			if cfg.fromContext {
				srcIdx = ins.add(c.buildContext())
			} else {
				// A nil source is the empty tree.
				srcIdx = ins.addOwn(cfg.source)
			}
		}
		p := src
		if cfg.parents {
			if parent, pattern, ok := strings.Cut(src, "/./"); ok {
				p = cleanPath("/"+parent) + "/./" + strings.TrimPrefix(cleanPath("/"+pattern), "/")
			} else {
				p = cleanPath("/" + src)
			}
		} else {
			p = cleanPath("/" + src)
		}
		actions = append(actions, llb.FileAction{Copy: &llb.Copy{
			Src:                srcIdx,
			SrcPaths:           []string{p},
			Dest:               dest,
			Chown:              chown,
			Chmod:              cfg.chmod,
			FollowSymlinks:     true,
			DirContentsOnly:    true,
			AllowWildcard:      true,
			AllowEmptyWildcard: true,
			CreateDestPath:     true,
			AttemptUnpack:      unpack,
			ExcludePatterns:    cloneSlice(cfg.exclude),
			Parents:            cfg.parents,
		}})
	}
	for _, sc := range cfg.params.SourceContents {
		msg += " <<" + sc.Path
		f := cleanPath("/" + sc.Path)
		doc := c.inlineDocument(f, 0o644, sc.Data, llb.Location{})
		actions = append(actions, llb.FileAction{Copy: &llb.Copy{
			Src:            ins.add(doc),
			SrcPaths:       []string{f},
			Dest:           dest,
			Chown:          chown,
			Chmod:          cfg.chmod,
			CreateDestPath: true,
		}})
	}
	msg += " " + cfg.params.DestPath
	if len(actions) == 0 {
		return fmt.Errorf("%s requires at least one source", kind)
	}
	createdBy := msg + " # buildkit"
	copied := llb.NewVertex(llb.FileOp{Base: base, Actions: actions}, ins.list, c.meta(display, cfg.loc, createdBy))
	if link {
		copied = c.linkCopy(s.state, copied, display, cmdText, cfg.loc)
	}
	s.state = copied
	s.commit(createdBy, true)
	return nil
}

// cleanPath is path.Clean for absolute paths.
func cleanPath(p string) string { return path.Clean(p) }

type (
	v1ConfigFile   = v1.ConfigFile
	v1HealthConfig = v1.HealthConfig
)

func v1History(createdBy string, empty bool) v1.History {
	return v1.History{CreatedBy: createdBy, Comment: historyComment, EmptyLayer: empty}
}
