package dockerfile

import (
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/builderdev/builder/llb"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// commit appends a history entry; layer is false for an instruction that
// only changes the config.
func (s *stage) commit(msg string, layer bool) {
	s.img.History = append(s.img.History, v1History(msg, !layer))
}

// dispatchCommand applies one instruction to the stage: it expands the
// instruction's variables, runs the build checks of that moment and calls
// the instruction's own dispatch function, as BuildKit's dispatch does.
func (c *converter) dispatchCommand(s *stage, cmd command) error {
	// A `# check=skip=RULE` comment right above the instruction applies
	// to it only, as in BuildKit.
	if c.lint != nil {
		saved := c.lint
		c.lint = c.lint.WithMergedConfigFromComments(cmd.Comments())
		defer func() { c.lint = saved }()
	}
	if err := c.expandCommand(s, cmd); err != nil {
		return err
	}
	c.lintCommand(s, cmd.Command)

	switch x := cmd.Command.(type) {
	case *instructions.MaintainerCommand:
		return c.dispatchMaintainer(s, x)
	case *instructions.EnvCommand:
		return c.dispatchEnv(s, x)
	case *instructions.RunCommand:
		return c.dispatchRun(s, x, cmd)
	case *instructions.WorkdirCommand:
		return c.dispatchWorkdir(s, x)
	case *instructions.AddCommand:
		return c.dispatchAdd(s, x)
	case *instructions.CopyCommand:
		return c.dispatchCopyCommand(s, x, cmd)
	case *instructions.LabelCommand:
		return c.dispatchLabel(s, x)
	case *instructions.OnbuildCommand:
		return c.dispatchOnbuild(s, x)
	case *instructions.CmdCommand:
		return c.dispatchCmd(s, x)
	case *instructions.EntrypointCommand:
		return c.dispatchEntrypoint(s, x)
	case *instructions.HealthCheckCommand:
		return c.dispatchHealthcheck(s, x)
	case *instructions.ExposeCommand:
		return c.dispatchExpose(s, x)
	case *instructions.UserCommand:
		return c.dispatchUser(s, x)
	case *instructions.VolumeCommand:
		return c.dispatchVolume(s, x)
	case *instructions.StopSignalCommand:
		return c.dispatchStopSignal(s, x)
	case *instructions.ShellCommand:
		return c.dispatchShell(s, x)
	case *instructions.ArgCommand:
		return c.dispatchArg(s, x)
	default:
		return fmt.Errorf("unsupported instruction %s", cmd.Name())
	}
}

// expandCommand expands the variables of cmd's words in the stage's
// environment (ARG expands its own defaults) and reports undefined ones.
func (c *converter) expandCommand(s *stage, cmd command) error {
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

// epochUnix is SOURCE_DATE_EPOCH in Unix seconds, nil when unset.
func (c *converter) epochUnix() *int64 {
	if c.epoch == nil {
		return nil
	}
	n := c.epoch.Unix()
	return &n
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
