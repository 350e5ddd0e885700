package dockerfile

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Target is one stage as `build --call targets` lists it.
type Target struct {
	Name        string // "" for an unnamed stage
	Description string // the comment above FROM that starts with the name
	Base        string // FROM as written
	Platform    string // FROM --platform as written
	Default     bool   // the last stage, built without --target
	Line        int
}

// Outline is what `build --call outline` prints: the target and the
// build args, secrets and ssh sockets it uses.
type Outline struct {
	Name        string
	Description string
	Args        []OutlineArg
	Secrets     []OutlineMount
	SSH         []OutlineMount
}

// OutlineArg is one build arg: its value (default, or the --build-arg) and
// the comment above its ARG that starts with its name.
type OutlineArg struct {
	Name        string
	Value       string
	Description string
	Line        int
}

// OutlineMount is a secret or ssh id a RUN --mount needs.
type OutlineMount struct {
	ID       string
	Required bool
	Line     int
}

// parseStages parses opt.Dockerfile into stages and meta args, with located
// errors. With lint set it first makes c.lint from the check directive, and
// the parser reports its findings to it.
func (c *converter) parseStages(lint bool) ([]instructions.Stage, []instructions.ArgCommand, *parser.Result, error) {
	if len(bytes.TrimSpace(c.opt.Dockerfile)) == 0 {
		return nil, nil, nil, &Error{File: c.file, Line: 1, Err: errors.New("the Dockerfile cannot be empty")}
	}
	if err := c.checkSyntax(c.opt.Dockerfile); err != nil {
		return nil, nil, nil, err
	}
	if lint {
		l, err := c.newLinter(c.opt.Dockerfile)
		if err != nil {
			return nil, nil, nil, err
		}
		c.lint = l
	}
	ast, err := parser.Parse(bytes.NewReader(c.opt.Dockerfile))
	if err != nil {
		return nil, nil, nil, c.errAt(nil, err)
	}
	stages, metaArgs, err := instructions.Parse(ast.AST, c.lint)
	if err != nil {
		var ue *instructions.UnknownInstructionError
		if errors.As(err, &ue) && ue.Line > 0 {
			return nil, nil, nil, &Error{File: c.file, Line: ue.Line, Err: unknownInstruction(err)}
		}
		return nil, nil, nil, c.errAt(nil, err)
	}
	if len(stages) == 0 {
		return nil, nil, nil, &Error{File: c.file, Line: 1, Err: errors.New("dockerfile contains no stages to build")}
	}
	return stages, metaArgs, ast, nil
}

// ListTargets lists the stages of opt.Dockerfile without converting it.
func ListTargets(opt Options) (targets []Target, err error) {
	c := newConverter(opt)
	defer func() {
		if r := recover(); r != nil {
			targets, err = nil, &Error{File: c.file, Line: 1, Err: fmt.Errorf("internal error parsing Dockerfile: %v", r)}
		}
	}()
	stages, _, _, err := c.parseStages(false)
	if err != nil {
		return nil, err
	}
	for i, s := range stages {
		line, _ := lines(s.Location)
		targets = append(targets, Target{
			Name: s.Name, Description: s.DocComment, Base: s.BaseName, Platform: s.Platform,
			Default: i == len(stages)-1, Line: line,
		})
	}
	return targets, nil
}

// MakeOutline describes the target stage of opt.Dockerfile and the build
// args, secrets and ssh ids of the stages it needs, without resolving any
// image.
func MakeOutline(opt Options) (out *Outline, err error) {
	c := newConverter(opt)
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, &Error{File: c.file, Line: 1, Err: fmt.Errorf("internal error parsing Dockerfile: %v", r)}
		}
	}()
	stages, metaArgs, ast, err := c.parseStages(false)
	if err != nil {
		return nil, err
	}
	c.shlex = shell.NewLex(ast.EscapeToken)
	c.platform = hostPlatform()
	targetName := opt.Target
	if targetName == "" {
		targetName = stages[len(stages)-1].Name
	}
	if err := c.buildGlobalArgs(metaArgs, targetName); err != nil {
		return nil, err
	}
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
	out = &Outline{Name: target.st.Name, Description: target.st.DocComment}

	// Global args count when a needed FROM uses them; stage args when a
	// needed stage declares them.
	need := reachable(target)
	used := map[string]bool{}
	for _, s := range need {
		for k := range s.baseMatch {
			used[k] = true
		}
		for k := range s.baseUnset {
			used[k] = true
		}
		if s.st.Platform != "" {
			if res, err := c.shlex.ProcessWordWithMatches(s.st.Platform, c.global); err == nil {
				for k := range res.Matched {
					used[k] = true
				}
			}
		}
	}
	seen := map[string]bool{}
	add := func(kv instructions.KeyValuePairOptional, value string, loc []parser.Range) {
		if seen[kv.Key] {
			return
		}
		seen[kv.Key] = true
		line, _ := lines(loc)
		out.Args = append(out.Args, OutlineArg{Name: kv.Key, Value: value, Description: kv.DocComment, Line: line})
	}
	for _, cmd := range metaArgs {
		for _, kv := range cmd.Args {
			if used[kv.Key] {
				v, _ := c.global.Get(kv.Key)
				add(kv, v, cmd.Location())
			}
		}
	}
	sort.SliceStable(need, func(i, j int) bool { return need[i].index < need[j].index })
	for _, s := range need {
		env := c.global
		for _, cmd := range s.cmds {
			switch x := cmd.Command.(type) {
			case *instructions.ArgCommand:
				for _, kv := range x.Args {
					v, set := opt.BuildArgs[kv.Key]
					switch {
					case set:
					case kv.Value != nil:
						if w, _, err := c.shlex.ProcessWord(*kv.Value, env); err == nil {
							v = w
						} else {
							v = *kv.Value
						}
					default:
						v, _ = c.global.Get(kv.Key)
					}
					env = env.set(kv.Key, v)
					add(kv, v, x.Location())
				}
			case *instructions.RunCommand:
				// The --mount flags are parsed when the command is expanded.
				if err := x.Expand(func(w string) (string, error) { return w, nil }); err != nil {
					return nil, c.errAt(x.Location(), err)
				}
				outlineMounts(out, x)
			}
		}
	}
	return out, nil
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}

func appendMount(list []OutlineMount, m OutlineMount) []OutlineMount {
	for i := range list {
		if list[i].ID == m.ID {
			list[i].Required = list[i].Required || m.Required
			return list
		}
	}
	return append(list, m)
}

// outlineMounts adds the secret and ssh mounts of a RUN to out.
func outlineMounts(out *Outline, x *instructions.RunCommand) {
	line, _ := lines(x.Location())
	for _, m := range instructions.GetMounts(x) {
		switch m.Type {
		case instructions.MountTypeSecret:
			id := m.CacheID
			if id == "" {
				id = m.Source
			}
			if id == "" && m.Target != "" {
				id = m.Target[lastSlash(m.Target)+1:]
			}
			out.Secrets = appendMount(out.Secrets, OutlineMount{ID: id, Required: m.Required, Line: line})
		case instructions.MountTypeSSH:
			id := m.CacheID
			if id == "" {
				id = "default"
			}
			out.SSH = appendMount(out.SSH, OutlineMount{ID: id, Required: m.Required, Line: line})
		}
	}
}
