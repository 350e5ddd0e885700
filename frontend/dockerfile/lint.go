package dockerfile

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/builderdev/builder/llb"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Warning is one build-check finding, as BuildKit's linter reports it.
type Warning struct {
	Rule        string // e.g. "JSONArgsRecommended"
	Description string // the rule's description
	URL         string // the rule's documentation
	Message     string // the finding, e.g. "JSON arguments recommended for CMD ..."
	Location    llb.Location
}

// Short is BuildKit's one-line form: "Rule: message (line N)".
func (w Warning) Short() string { return linter.LintFormatShort(w.Rule, w.Message, w.Location.Line) }

// checkArg is the build arg that overrides the `# check=` directive, as in
// BuildKit.
const checkArg = "BUILDKIT_DOCKERFILE_CHECK"

// newLinter makes the linter of one conversion from the `# check=`
// directive (or the BUILDKIT_DOCKERFILE_CHECK build arg, which wins).
// Findings go to c.warnings and to opt.Warn.
func (c *converter) newLinter(dt []byte) (*linter.Linter, error) {
	cfg := &linter.Config{}
	val, _, rng, ok := parser.ParseDirective("check", dt)
	if v, set := c.opt.BuildArgs[checkArg]; set {
		val, ok, rng = v, true, nil
	}
	if ok {
		parsed, err := linter.ParseLintOptions(val)
		if err != nil {
			return nil, c.errAt(rng, fmt.Errorf("parsing check directive %q: %w", val, err))
		}
		cfg = parsed
	}
	seen := map[string]bool{}
	cfg.Warn = func(rule, description, url, msg string, location []parser.Range) {
		w := Warning{Rule: rule, Description: description, URL: url, Message: msg, Location: c.location(location)}
		key := fmt.Sprintf("%s\x00%s\x00%d", rule, msg, w.Location.Line)
		if seen[key] {
			return
		}
		seen[key] = true
		c.warnings = append(c.warnings, w)
		if c.opt.Warn != nil {
			c.opt.Warn(w)
		}
	}
	return linter.New(cfg), nil
}

// supportedSyntax matches the `# syntax=` values this built-in frontend
// serves: docker/dockerfile with any 1.x tag (or none) and/or a digest.
var supportedSyntax = regexp.MustCompile(`^(?:(?:docker\.io/)?(?:library/)?|registry-1\.docker\.io/)?docker/dockerfile(?::1(?:\.[0-9]+)*(?:-labs)?)?(?:@sha256:[0-9a-f]{64})?$`)

// checkSyntax rejects `# syntax=` directives naming another frontend.
func (c *converter) checkSyntax(dt []byte) error {
	ref, _, rng, ok := parser.DetectSyntax(dt)
	if !ok || supportedSyntax.MatchString(ref) {
		return nil
	}
	return c.errAt(rng, fmt.Errorf("unsupported syntax directive %q: external frontends are not supported; "+
		"builder serves docker/dockerfile:1 itself (remove the line or use # syntax=docker/dockerfile:1)", ref))
}

// instructionNames are the Dockerfile instructions, for suggestions.
var instructionNames = []string{"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
	"LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}

// unknownInstruction rewrites BuildKit's unknown-instruction error with
// the nearest instruction name, in upper case.
func unknownInstruction(err error) error {
	var ue *instructions.UnknownInstructionError
	if !errors.As(err, &ue) {
		return err
	}
	msg := "unknown instruction: " + ue.Instruction
	if s := nearest(strings.ToUpper(ue.Instruction), instructionNames); s != "" {
		msg += " (did you mean " + s + "?)"
	}
	return errors.New(msg)
}

// nearest is the candidate closest to s by edit distance, if close enough
// to be a typo ("" otherwise).
func nearest(s string, candidates []string) string {
	best, bestD := closest(s, candidates)
	limit := 2
	if len(s) <= 3 {
		limit = 1
	}
	if bestD < 0 || bestD > limit || bestD >= len(s) {
		return ""
	}
	return best
}

// closest is the first candidate at the least edit distance from s, and
// that distance (-1 when there are no candidates).
func closest(s string, candidates []string) (string, int) {
	best, bestD := "", -1
	for _, cand := range candidates {
		if d := editDistance(s, cand); bestD < 0 || d < bestD {
			best, bestD = cand, d
		}
	}
	return best, bestD
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// lintStatic runs the rules that need only the parsed Dockerfile.
func (c *converter) lintStatic(ast *parser.Result, stages []instructions.Stage) {
	for _, w := range ast.Warnings {
		if w.URL == linter.RuleNoEmptyContinuation.URL && w.Location != nil {
			c.lint.Run(&linter.RuleNoEmptyContinuation, []parser.Range{*w.Location}, linter.RuleNoEmptyContinuation.Format())
		}
	}
	reserved := map[string]bool{"context": true, "scratch": true}
	names := map[string]bool{}
	for _, st := range stages {
		if st.Name == "" {
			continue
		}
		if reserved[st.Name] {
			c.lint.Run(&linter.RuleReservedStageName, st.Location, linter.RuleReservedStageName.Format(st.Name))
		}
		if names[st.Name] {
			c.lint.Run(&linter.RuleDuplicateStageName, st.Location, linter.RuleDuplicateStageName.Format(st.Name))
		}
		names[st.Name] = true
	}

	consistent := func(s string) bool { return s == strings.ToLower(s) || s == strings.ToUpper(s) }
	lower, upper := 0, 0
	count := func(s string) {
		if consistent(s) {
			if s == strings.ToLower(s) {
				lower++
			} else {
				upper++
			}
		}
	}
	for _, st := range stages {
		count(st.OrigCmd)
		for _, cmd := range st.Commands {
			count(cmd.Name())
		}
	}
	check := func(s string, loc []parser.Range) {
		want := ""
		if lower > upper && strings.ToLower(s) != s {
			want = "lowercase"
		} else if lower <= upper && strings.ToUpper(s) != s {
			want = "uppercase"
		}
		if want != "" {
			c.lint.Run(&linter.RuleConsistentInstructionCasing, loc, linter.RuleConsistentInstructionCasing.Format(s, want))
		}
	}
	for _, st := range stages {
		check(st.OrigCmd, st.Location)
		for _, cmd := range st.Commands {
			check(cmd.Name(), cmd.Location())
		}
	}
}

// useTracker remembers the last CMD, ENTRYPOINT or HEALTHCHECK of a stage,
// for MultipleInstructionsDisallowed.
type useTracker struct {
	set bool
	loc []parser.Range
}

// usedOnce reports the previous use of an instruction that only counts
// once per stage (BuildKit's validateUsedOnce).
func (c *converter) usedOnce(cmd instructions.Command, t *useTracker) {
	if t.set {
		c.lint.Run(&linter.RuleMultipleInstructionsDisallowed, t.loc, linter.RuleMultipleInstructionsDisallowed.Format(cmd.Name()))
	}
	t.set, t.loc = true, cmd.Location()
}

// lintCommand runs the rules BuildKit checks while it dispatches cmd: only
// in the stages a build converts (every stage with --check), after the
// command's variables are expanded.
func (c *converter) lintCommand(s *stage, cmd instructions.Command) {
	switch x := cmd.(type) {
	case *instructions.CmdCommand:
		c.usedOnce(x, &s.cmdUse)
		if x.PrependShell && len(s.img.Config.Shell) == 0 {
			c.lint.Run(&linter.RuleJSONArgsRecommended, x.Location(), linter.RuleJSONArgsRecommended.Format(x.Name()))
		}
	case *instructions.EntrypointCommand:
		c.usedOnce(x, &s.entrypointUse)
		if x.PrependShell && len(s.img.Config.Shell) == 0 {
			c.lint.Run(&linter.RuleJSONArgsRecommended, x.Location(), linter.RuleJSONArgsRecommended.Format(x.Name()))
		}
	case *instructions.HealthCheckCommand:
		c.usedOnce(x, &s.healthcheckUse)
	case *instructions.EnvCommand:
		for _, e := range x.Env {
			if e.NoDelim {
				c.lint.Run(&linter.RuleLegacyKeyValueFormat, x.Location(), linter.RuleLegacyKeyValueFormat.Format(x.Name()))
			}
			c.lintSecretKey("ENV", e.Key, x.Location())
		}
	case *instructions.LabelCommand:
		for _, l := range x.Labels {
			if l.NoDelim {
				c.lint.Run(&linter.RuleLegacyKeyValueFormat, x.Location(), linter.RuleLegacyKeyValueFormat.Format(x.Name()))
			}
		}
	case *instructions.ArgCommand:
		for _, a := range x.Args {
			c.lintSecretKey("ARG", a.Key, x.Location())
		}
	case *instructions.WorkdirCommand:
		// Only the first WORKDIR of the stage chain counts: fixing it
		// fixes the later relative ones (a parent stage's counts too).
		if !s.workdirSet && !strings.HasPrefix(x.Path, "/") {
			c.lint.Run(&linter.RuleWorkdirRelativePath, x.Location(), linter.RuleWorkdirRelativePath.Format(x.Path))
		}
		s.workdirSet = true
	}
}

var (
	secretDeny  = regexp.MustCompile(`(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)`)
	secretAllow = regexp.MustCompile(`(?i)(?:_|^)(?:public|file|version)(?:_|$)`)
)

// lintSecretKey warns about ARG and ENV names that look like secrets.
func (c *converter) lintSecretKey(instruction, key string, loc []parser.Range) {
	if secretDeny.MatchString(key) && !secretAllow.MatchString(key) {
		c.lint.Run(&linter.RuleSecretsUsedInArgOrEnv, loc, linter.RuleSecretsUsedInArgOrEnv.Format(instruction, key))
	}
}

// lintFrom runs the FROM rules: undefined args in the base name or
// platform, a platform that is just $TARGETPLATFORM, a constant platform.
func (c *converter) lintFrom(st instructions.Stage, nameRes shell.ProcessWordResult, platRes *shell.ProcessWordResult) {
	if c.lint != nil {
		saved := c.lint
		c.lint = c.lint.WithMergedConfigFromComments(st.Comments)
		defer func() { c.lint = saved }()
	}
	declared := map[string]struct{}{}
	for _, k := range c.global.Keys() {
		declared[k] = struct{}{}
	}
	// An ARG before FROM declares its name even without a value
	// (FROM scra${DEBUG:-tch} with ARG DEBUG).
	for _, k := range c.metaArgKeys {
		declared[k] = struct{}{}
	}
	report := func(unmatched map[string]struct{}) {
		var keys []string
		for k := range unmatched {
			if _, ok := declared[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			c.lint.Run(&linter.RuleUndefinedArgInFrom, st.Location, linter.RuleUndefinedArgInFrom.Format(k, nearestArg(k, keysOf(declared))))
		}
	}
	report(nameRes.Unmatched)
	if platRes == nil {
		return
	}
	report(platRes.Unmatched)
	if len(platRes.Matched) == 1 && len(platRes.Unmatched) == 0 {
		if _, ok := platRes.Matched["TARGETPLATFORM"]; ok {
			if v, _ := c.global.Get("TARGETPLATFORM"); v == platRes.Result {
				c.lint.Run(&linter.RuleRedundantTargetPlatform, st.Location, linter.RuleRedundantTargetPlatform.Format(st.Platform))
			}
		}
	}
	if len(platRes.Matched) == 0 && len(platRes.Unmatched) == 0 {
		if p, err := parsePlatform(platRes.Result); err == nil &&
			!strings.Contains(st.Name, p.OS) && !strings.Contains(st.Name, p.Architecture) {
			c.lint.Run(&linter.RuleFromPlatformFlagConstDisallowed, st.Location, linter.RuleFromPlatformFlagConstDisallowed.Format(platRes.Result))
		}
	}
}

// nearestArg suggests a declared name for a misspelt one as BuildKit's
// suggest.Search does (case-sensitive): the first of the closest names at an
// edit distance below 3, none when s itself is declared.
func nearestArg(s string, keys []string) string {
	match, best := "", 3
	for _, k := range keys {
		if k == s {
			return ""
		}
		if d := editDistance(s, k); d < best {
			match, best = k, d
		}
	}
	return match
}

// lintDefaultFromArgs checks that every FROM is a valid reference with
// the default values of the global args (no --build-arg).
func (c *converter) lintDefaultFromArgs(stages []instructions.Stage, metaArgs []instructions.ArgCommand, defaults envList) {
	env := defaults
	for _, cmd := range metaArgs {
		for _, kp := range cmd.Args {
			if kp.Value == nil {
				continue
			}
			v, _, err := c.shlex.ProcessWord(*kp.Value, env)
			if err != nil {
				return
			}
			env = env.set(kp.Key, v)
		}
	}
	stageNames := map[string]bool{}
	for _, st := range stages {
		res, err := c.shlex.ProcessWordWithMatches(st.BaseName, env)
		if err != nil {
			return
		}
		ok := res.Result == emptyImageName || stageNames[strings.ToLower(res.Result)]
		if !ok {
			_, perr := name.ParseReference(res.Result)
			ok = perr == nil
		}
		if !ok {
			c.lint.Run(&linter.RuleInvalidDefaultArgInFrom, st.Location, linter.RuleInvalidDefaultArgInFrom.Format(st.BaseName))
		}
		if st.Name != "" {
			stageNames[strings.ToLower(st.Name)] = true
		}
	}
}

// lintUndefined reports variables a command used that neither the stage's
// environment nor its ARGs define (UndefinedVar).
func (c *converter) lintUndefined(s *stage, cmd instructions.Command, unmatched map[string]struct{}) {
	if len(unmatched) == 0 {
		return
	}
	for _, a := range s.buildArgs {
		delete(unmatched, a.Key)
	}
	keys := make([]string, 0, len(unmatched))
	for k := range unmatched {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c.lint.Run(&linter.RuleUndefinedVar, cmd.Location(), linter.RuleUndefinedVar.Format(k, nearestArg(k, s.env.Keys())))
	}
}

// keysOf returns the keys of m, sorted.
func keysOf(m map[string]struct{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lintError is the error of a build whose `# check=error=true` turns
// warnings into a failure.
func (c *converter) lintError() error {
	if c.lint.Error() == nil {
		return nil
	}
	var rules []string
	seen := map[string]bool{}
	for _, w := range c.warnings {
		if !seen[w.Rule] {
			seen[w.Rule] = true
			rules = append(rules, w.Rule)
		}
	}
	err := fmt.Errorf("lint violation found for rules: %s", strings.Join(rules, ", "))
	line := 1
	if len(c.warnings) > 0 && c.warnings[0].Location.Line > 0 {
		line = c.warnings[0].Location.Line
	}
	return &Error{File: c.file, Line: line, Err: fmt.Errorf("%w (check error=true makes warnings fail the build)", err)}
}
