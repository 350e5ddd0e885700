package dockerfile

import (
	"errors"
	"fmt"
	"strings"

	"github.com/builderdev/builder/llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// The instructions that only change the image config (and the stage's
// environment): one function each, as BuildKit's dispatch has.

func (c *converter) dispatchMaintainer(s *stage, x *instructions.MaintainerCommand) error {
	s.img.Author = x.Maintainer
	s.commit("MAINTAINER "+x.Maintainer, false)
	return nil
}

func (c *converter) dispatchEnv(s *stage, x *instructions.EnvCommand) error {
	msg := "ENV"
	for _, e := range x.Env {
		msg += " " + e.String()
		s.env = s.env.set(e.Key, e.Value)
		s.img.Config.Env = addEnv(s.img.Config.Env, e.Key, e.Value)
	}
	s.commit(msg, false)
	return nil
}

func (c *converter) dispatchLabel(s *stage, x *instructions.LabelCommand) error {
	if s.img.Config.Labels == nil {
		s.img.Config.Labels = make(map[string]string, len(x.Labels))
	}
	msg := "LABEL"
	for _, l := range x.Labels {
		s.img.Config.Labels[l.Key] = l.Value
		msg += " " + l.String()
	}
	s.commit(msg, false)
	return nil
}

func (c *converter) dispatchOnbuild(s *stage, x *instructions.OnbuildCommand) error {
	s.img.Config.OnBuild = append(s.img.Config.OnBuild, x.Expression)
	return nil
}

func (c *converter) dispatchCmd(s *stage, x *instructions.CmdCommand) error {
	args := x.CmdLine
	if x.PrependShell {
		args = withShell(s.img, args)
	}
	s.img.Config.Cmd = args
	s.img.Config.ArgsEscaped = true
	s.cmdSet = true
	s.commit(fmt.Sprintf("CMD %q", args), false)
	return nil
}

func (c *converter) dispatchEntrypoint(s *stage, x *instructions.EntrypointCommand) error {
	args := x.CmdLine
	if x.PrependShell {
		args = withShell(s.img, args)
	}
	s.img.Config.Entrypoint = args
	if !s.cmdSet {
		s.img.Config.Cmd = nil
	}
	s.commit(fmt.Sprintf("ENTRYPOINT %q", args), false)
	return nil
}

func (c *converter) dispatchHealthcheck(s *stage, x *instructions.HealthCheckCommand) error {
	h := x.Health
	s.img.Config.Healthcheck = &v1HealthConfig{
		Test: cloneSlice(h.Test), Interval: h.Interval, Timeout: h.Timeout,
		StartPeriod: h.StartPeriod, Retries: h.Retries,
	}
	s.startInterval = h.StartInterval
	s.commit(fmt.Sprintf("HEALTHCHECK {Test:%v Interval:%v Timeout:%v StartPeriod:%v StartInterval:%v Retries:%d}",
		h.Test, h.Interval, h.Timeout, h.StartPeriod, h.StartInterval, h.Retries), false)
	return nil
}

func (c *converter) dispatchExpose(s *stage, x *instructions.ExposeCommand) error {
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
	return nil
}

func (c *converter) dispatchUser(s *stage, x *instructions.UserCommand) error {
	s.user = x.User
	s.img.Config.User = x.User
	s.commit("USER "+x.User, false)
	return nil
}

func (c *converter) dispatchVolume(s *stage, x *instructions.VolumeCommand) error {
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
	return nil
}

func (c *converter) dispatchStopSignal(s *stage, x *instructions.StopSignalCommand) error {
	if err := checkSignal(x.Signal); err != nil {
		return err
	}
	s.img.Config.StopSignal = x.Signal
	s.commit("STOPSIGNAL "+x.Signal, false)
	return nil
}

func (c *converter) dispatchShell(s *stage, x *instructions.ShellCommand) error {
	s.img.Config.Shell = cloneSlice(x.Shell)
	s.commit(fmt.Sprintf("SHELL %v", x.Shell), false)
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
