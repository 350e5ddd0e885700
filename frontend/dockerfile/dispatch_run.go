package dockerfile

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/builderdev/builder/llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// dispatchRun converts RUN into an exec op on the stage's root with its
// mounts, network and security mode.
func (c *converter) dispatchRun(s *stage, x *instructions.RunCommand, cmd command) error {
	ins := &inputs{}
	// The root is input 0 even when it is the empty tree.
	ins.addOwn(s.state)
	mounts := []llb.Mount{{Input: 0, Dest: "/"}}

	args, name, heredocMount, err := c.runArgs(s, x, ins)
	if err != nil {
		return err
	}
	if heredocMount != nil {
		mounts = append(mounts, *heredocMount)
	}
	network, err := c.runNetwork(x)
	if err != nil {
		return err
	}
	security, err := c.runSecurity(x)
	if err != nil {
		return err
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

// runArgs is the command line of a RUN (heredocs included, with the
// stage's shell for the shell form), its display name, and the mount of a
// heredoc script that starts with "#!".
func (c *converter) runArgs(s *stage, x *instructions.RunCommand, ins *inputs) ([]string, string, *llb.Mount, error) {
	name := x.String()
	args := x.CmdLine
	var mount *llb.Mount
	if len(x.Files) > 0 {
		if len(args) != 1 || !x.PrependShell {
			return nil, "", nil, fmt.Errorf("parsing produced an invalid run command: %v", args)
		}
		if hd := parser.MustParseHeredoc(args[0]); hd != nil {
			data := x.Files[0].Data
			if x.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if s.img.OS != "windows" && strings.HasPrefix(data, "#!") {
				f := path.Clean("/" + x.Files[0].Name)
				doc := c.inlineDocument(f, 0o755, data, c.location(x.Location()))
				mount = &llb.Mount{Input: ins.add(doc), Selector: "/", Dest: "/dev/pipes/", Readonly: true}
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
	return args, name, mount, nil
}

// runNetwork is the network mode of RUN --network.
func (c *converter) runNetwork(x *instructions.RunCommand) (llb.NetMode, error) {
	switch n := instructions.GetNetwork(x); n {
	case instructions.NetworkDefault:
		return c.opt.DefaultNetwork, nil
	case instructions.NetworkHost:
		// As in BuildKit, asking for the host's network explicitly is an
		// entitlement, even though the default network is the host's too.
		if !c.opt.AllowNetworkHost {
			return "", errors.New("RUN --network=host is not allowed: the build needs --allow network.host")
		}
		return llb.NetHost, nil
	case instructions.NetworkNone:
		return llb.NetNone, nil
	default:
		return "", fmt.Errorf("unsupported network mode %q", n)
	}
}

// runSecurity is the sandbox mode of RUN --security.
func (c *converter) runSecurity(x *instructions.RunCommand) (llb.SecurityMode, error) {
	switch sec := instructions.GetSecurity(x); sec {
	case instructions.SecuritySandbox, "":
		return llb.SecuritySandbox, nil
	case instructions.SecurityInsecure:
		if !c.opt.AllowInsecure {
			return "", errors.New("RUN --security=insecure is not allowed: the build needs --allow security.insecure")
		}
		return llb.SecurityInsecure, nil
	default:
		return "", fmt.Errorf("unsupported security mode %q", sec)
	}
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
		switch m.Type {
		case instructions.MountTypeSecret:
			mt := secretMount(m, target)
			if mt.SecretEnv != "" {
				secretEnvs = append(secretEnvs, mt.SecretEnv)
			}
			out = append(out, mt)
			continue
		case instructions.MountTypeSSH:
			out = append(out, sshMount(m, target, sshCount))
			sshCount++
			continue
		}
		if target == "/" || target == "." {
			return nil, nil, fmt.Errorf("invalid mount target %q", m.Target)
		}
		mt, err := c.treeMount(s, m, src, target, ins)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, mt)
	}
	return out, secretEnvs, nil
}

// mountMode and mountID convert the optional mode, uid and gid of a mount.
func mountMode(m *uint64) *uint32 {
	if m == nil {
		return nil
	}
	v := uint32(*m)
	return &v
}

func mountID(p *uint64) *int {
	if p == nil {
		return nil
	}
	v := int(*p)
	return &v
}

// secretMount converts RUN --mount=type=secret: a file (default
// /run/secrets/ID, mode 0400) and/or an env var.
func secretMount(m *instructions.Mount, target string) llb.Mount {
	sid := m.CacheID
	if sid == "" {
		sid = m.Source
	}
	if sid == "" {
		sid = path.Base(target)
	}
	mt := llb.Mount{Input: -1, Type: llb.MountSecret, SecretID: sid, Required: m.Required, Mode: mountMode(m.Mode), UID: mountID(m.UID), GID: mountID(m.GID), Readonly: true}
	if m.Env != nil {
		mt.SecretEnv = *m.Env
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
	return mt
}

// sshMount converts RUN --mount=type=ssh; n numbers the ssh mounts without
// a target.
func sshMount(m *instructions.Mount, target string, n int) llb.Mount {
	sid := m.CacheID
	if sid == "" {
		sid = "default"
	}
	if m.Target == "" {
		target = "/run/buildkit/ssh_agent." + strconv.Itoa(n)
	}
	mt := llb.Mount{Input: -1, Type: llb.MountSSH, SecretID: sid, Dest: target, Required: m.Required, Mode: mountMode(m.Mode), UID: mountID(m.UID), GID: mountID(m.GID), Readonly: true}
	if mt.Mode == nil {
		v := uint32(0o600)
		mt.Mode = &v
	}
	return mt
}

// treeMount converts the mounts of a tree: tmpfs, cache (empty or from a
// stage) and bind (the context or a stage).
func (c *converter) treeMount(s *stage, m *instructions.Mount, src *stage, target string, ins *inputs) (llb.Mount, error) {
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
		mt.Mode, mt.UID, mt.GID = mountMode(m.Mode), mountID(m.UID), mountID(m.GID)
		if m.From != "" && src != nil {
			if err := c.checkSource(s, src, m.From); err != nil {
				return mt, err
			}
			mt.Input = ins.add(src.state)
		}
	default: // bind
		if m.From == "" {
			mt.Input = ins.add(c.buildContext())
		} else {
			if err := c.checkSource(s, src, m.From); err != nil {
				return mt, err
			}
			mt.Input = ins.add(src.state)
		}
	}
	return mt, nil
}

func (c *converter) checkSource(s, src *stage, from string) error {
	if src == nil || !src.dispatched {
		return fmt.Errorf("cannot mount from stage %q, stage needs to be defined before current command in stage %q", from, s.display)
	}
	return nil
}
