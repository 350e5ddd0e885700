package dockerfile

import (
	"path"
	"regexp"
	"strings"

	"github.com/builderdev/builder/llb"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// lintCopyIgnored runs CopyIgnoredFile for a local source of COPY/ADD from
// the build context, as BuildKit's validateCopySourcePath: only when the
// .dockerignore has patterns and no "!" exceptions (those are too hard to
// judge statically), and for "." or "/" only when a pattern excludes every
// root entry ("*", "**", "**/*").
func (c *converter) lintCopyIgnored(isAdd bool, src string, loc []parser.Range) {
	if c.lint == nil || len(c.opt.ExcludePatterns) == 0 {
		return
	}
	for _, p := range c.opt.ExcludePatterns {
		if strings.HasPrefix(p, "!") {
			return
		}
	}
	cmd := "Copy"
	if isAdd {
		cmd = "Add"
	}
	src = path.Clean(src)
	if src == "." || src == "/" {
		root := false
		for _, p := range c.opt.ExcludePatterns {
			switch p {
			case "*", "**", "**/*":
				root = true
			}
		}
		if !root {
			return
		}
	}
	if ignoreMatches(c.opt.ExcludePatterns, src) {
		c.lint.Run(&linter.RuleCopyIgnoredFile, loc, linter.RuleCopyIgnoredFile.Format(cmd, src))
	}
}

// ignoreMatches reports whether a .dockerignore pattern without exceptions
// matches file or one of its parent directories, with the pattern syntax of
// Docker's patternmatcher ("**" spans directories, "*" and "?" stay within
// one, "\" escapes). file is matched as written: "/a" is not "a", as in
// BuildKit.
func ignoreMatches(patterns []string, file string) bool {
	var cands []string
	for f := file; ; {
		cands = append(cands, f)
		d := path.Dir(f)
		if d == f || d == "." || d == "/" {
			break
		}
		f = d
	}
	for _, p := range patterns {
		re, err := ignorePatternRegexp(p)
		if err != nil {
			continue
		}
		for _, f := range cands {
			if re.MatchString(f) {
				return true
			}
		}
	}
	return false
}

// ignorePatternRegexp compiles a .dockerignore pattern like Docker's
// patternmatcher.
func ignorePatternRegexp(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		ch := p[i]
		switch {
		case ch == '*' && i+1 < len(p) && p[i+1] == '*':
			i++
			if i+1 < len(p) && p[i+1] == '/' {
				i++
			}
			if i+1 >= len(p) {
				b.WriteString(".*")
			} else {
				b.WriteString("(.*/)?")
			}
		case ch == '*':
			b.WriteString("[^/]*")
		case ch == '?':
			b.WriteString("[^/]")
		case ch == '.' || ch == '$':
			b.WriteString(`\` + string(ch))
		case ch == '\\' && i+1 < len(p):
			i++
			b.WriteString(`\` + string(p[i]))
		default:
			b.WriteByte(ch)
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// lintBasePlatform runs InvalidBaseImagePlatform when the resolved base
// image's OS or architecture is not the stage's platform, as BuildKit's
// validateBaseImagePlatform (variants do not count).
func (c *converter) lintBasePlatform(name string, expected llb.Platform, img *v1ConfigFile, loc []parser.Range) {
	if c.lint == nil || img == nil {
		return
	}
	actual := llb.Platform{OS: img.OS, Architecture: img.Architecture, Variant: img.Variant}
	if expected.OS == actual.OS && expected.Architecture == actual.Architecture {
		return
	}
	c.lint.Run(&linter.RuleInvalidBaseImagePlatform, loc,
		linter.RuleInvalidBaseImagePlatform.Format(name, normalizedPlatform(expected), normalizedPlatform(actual)))
}

// normalizedPlatform formats p as containerd's platforms.FormatAll of
// platforms.Normalize: normalizePlatform's aliases and default variants
// (aarch64 is arm64, arm defaults to v7, arm64 drops v8), an empty OS or
// architecture shown as "unknown".
func normalizedPlatform(p llb.Platform) string {
	p = normalizePlatform(p)
	if p.OS == "" {
		p.OS = "unknown"
	}
	if p.Architecture == "" {
		p.Architecture = "unknown"
	}
	return p.String()
}
