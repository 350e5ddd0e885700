package dockerfile

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/builderdev/builder/llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

type copyConfig struct {
	params      instructions.SourcesAndDest
	exclude     []string
	fromContext bool
	source      *llb.Vertex
	// sourceName names source in errors (`stage "a"`).
	sourceName string
	isAdd      bool
	code       string
	chown      string
	chmod      string
	parents    bool
	checksum   string
	unpack     *bool
	loc        []parser.Range
	keepGitDir *bool
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
	// BuildKit's mode parser reads a value that starts with a digit as a
	// number, so "64a" is a bad octal number, not a bad symbolic mode.
	if s != "" && s[0] >= '0' && s[0] <= '9' {
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

// dispatchAdd converts ADD: a copy from the context (or a remote source)
// that unpacks local archives.
func (c *converter) dispatchAdd(s *stage, x *instructions.AddCommand) error {
	return c.dispatchCopy(s, copyConfig{
		params: x.SourcesAndDest, exclude: x.ExcludePatterns, fromContext: true, isAdd: true,
		code: x.String(), chown: x.Chown, chmod: x.Chmod, checksum: x.Checksum, unpack: x.Unpack, loc: x.Location(),
		keepGitDir: x.KeepGitDir, link: x.Link,
	})
}

// dispatchCopyCommand converts COPY, from the context or --from a stage
// or image.
func (c *converter) dispatchCopyCommand(s *stage, x *instructions.CopyCommand, cmd command) error {
	cfg := copyConfig{
		params: x.SourcesAndDest, exclude: x.ExcludePatterns, fromContext: true,
		code: x.String(), chown: x.Chown, chmod: x.Chmod, parents: x.Parents, loc: x.Location(),
		link: x.Link,
	}
	if len(cmd.sources) > 0 && cmd.sources[0] != nil {
		cfg.fromContext = false
		cfg.source = cmd.sources[0].state
		cfg.sourceName = c.sourceName(cmd.sources[0])
	}
	return c.dispatchCopy(s, cfg)
}

// kind is the instruction name of cfg.
func (cfg copyConfig) kind() string {
	if cfg.isAdd {
		return "ADD"
	}
	return "COPY"
}

// check validates the flags of a COPY or ADD before anything is made.
func (cfg copyConfig) check() error {
	if cfg.chmod != "" {
		if err := checkChmod(cfg.chmod); err != nil {
			return err
		}
	}
	if cfg.checksum != "" {
		if len(cfg.params.SourcePaths) != 1 {
			return errors.New("checksum can't be specified for multiple sources")
		}
		if !isURL(cfg.params.SourcePaths[0]) && !isGit(cfg.params.SourcePaths[0]) {
			return errors.New("checksum requires HTTP(S) or Git sources")
		}
	}
	if cfg.link && chownByName(cfg.chown) {
		return fmt.Errorf("--chown=%s: user and group names can't be resolved when used with --link, use numeric uid[:gid] instead", cfg.chown)
	}
	return nil
}

// historyPrefix is the start of a copy's history entry: the instruction
// and the flags BuildKit records.
func (cfg copyConfig) historyPrefix() string {
	msg := cfg.kind()
	if cfg.parents {
		msg += " --parents"
	}
	if cfg.chown != "" {
		msg += " --chown=" + cfg.chown
	}
	if cfg.chmod != "" {
		msg += " --chmod=" + cfg.chmod
	}
	return msg
}

// copySourcePath is the source path of a copy action: clean and absolute,
// keeping a --parents pivot ("/./").
func copySourcePath(src string, parents bool) string {
	if parents {
		if parent, pattern, ok := strings.Cut(src, "/./"); ok {
			return cleanPath("/"+parent) + "/./" + strings.TrimPrefix(cleanPath("/"+pattern), "/")
		}
	}
	return cleanPath("/" + src)
}

func (c *converter) dispatchCopy(s *stage, cfg copyConfig) error {
	dest := cfg.params.DestPath
	if dest == "" || dest == "." {
		dest = "./"
	}
	dest = normalizePath(s.dir, dest, true)
	if err := cfg.check(); err != nil {
		return err
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
	actions, msg, err := c.copyActions(s, cfg, dest, display, ins)
	if err != nil {
		return err
	}
	if len(actions) == 0 {
		return fmt.Errorf("%s requires at least one source", cfg.kind())
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

// copyActions makes one copy action per source (remote, context or
// stage path, heredoc) and the history text of the copy.
func (c *converter) copyActions(s *stage, cfg copyConfig, dest, display string, ins *inputs) ([]llb.FileAction, string, error) {
	var actions []llb.FileAction
	msg := cfg.historyPrefix()
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
			return nil, "", err
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
		actions = append(actions, llb.FileAction{Copy: &llb.Copy{
			Src:                srcIdx,
			SrcPaths:           []string{copySourcePath(src, cfg.parents)},
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
			SrcName:            cfg.sourceName,
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
	return actions, msg, nil
}

// sourceName names the stage, build context or image a COPY --from reads,
// for errors, in the user's words: a --build-context (also one that
// replaces a stage of its name) is a build context, whatever it holds.
func (c *converter) sourceName(src *stage) string {
	if src.unregistered || (src.name != "" && src.baseName == src.name) {
		if _, ok := c.namedContext(src.baseName); ok {
			return fmt.Sprintf("build context %q", src.baseName)
		}
	}
	if src.unregistered {
		return "image " + src.baseName
	}
	return "stage " + stageRef(src)
}
