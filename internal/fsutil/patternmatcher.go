package fsutil

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// Pattern is one compiled .dockerignore pattern.
type Pattern struct {
	// Text is the cleaned pattern without its leading "!".
	Text string
	// Exclusion is true for a "!" pattern: it re-includes what earlier
	// patterns excluded.
	Exclusion bool
	re        *regexp.Regexp
	// literalDirs are the leading components without wildcards, used to
	// decide whether an exception can match below a directory.
	literalDirs []string
	// openEnded is true when a component after literalDirs has wildcards.
	openEnded bool
}

// PatternMatcher matches slash-separated paths, relative to a context root,
// against .dockerignore patterns with Docker's semantics: patterns are
// evaluated in order, later ones override earlier ones, "!" patterns
// re-include, "*" and "?" do not cross "/", "**" crosses any number of
// directories, "[...]" is a character class and "\" escapes. A pattern that
// matches a directory matches everything below it.
type PatternMatcher struct {
	patterns   []*Pattern
	exclusions bool
}

// ErrBadPattern reports an invalid pattern.
var ErrBadPattern = errors.New("invalid pattern")

// CleanPattern normalizes a pattern as docker does when it reads
// .dockerignore: surrounding blanks trimmed, path cleaned, a leading "/"
// dropped. It keeps a leading "!".
func CleanPattern(p string) string {
	p = strings.TrimSpace(p)
	if p == "" {
		return ""
	}
	excl := false
	if p[0] == '!' {
		excl = true
		p = strings.TrimSpace(p[1:])
		if p == "" {
			return "!"
		}
	}
	p = path.Clean(filepath.ToSlash(p))
	if len(p) > 1 && p[0] == '/' {
		p = p[1:]
	}
	if excl {
		return "!" + p
	}
	return p
}

// NewPatternMatcher compiles patterns. Empty patterns and "#" comments are
// ignored; a lone "!" is an error.
func NewPatternMatcher(patterns []string) (*PatternMatcher, error) {
	pm := &PatternMatcher{}
	for _, raw := range patterns {
		if strings.HasPrefix(strings.TrimSpace(raw), "#") {
			continue
		}
		p := CleanPattern(raw)
		if p == "" {
			continue
		}
		pat := &Pattern{}
		if p[0] == '!' {
			if len(p) == 1 {
				return nil, fmt.Errorf("illegal exclusion pattern %q: %w", raw, ErrBadPattern)
			}
			pat.Exclusion = true
			p = p[1:]
			pm.exclusions = true
		}
		pat.Text = p
		re, err := compilePattern(p)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w: %v", raw, ErrBadPattern, err)
		}
		pat.re = re
		for _, c := range strings.Split(p, "/") {
			if hasWildcards(c) {
				pat.openEnded = true
				break
			}
			pat.literalDirs = append(pat.literalDirs, c)
		}
		pm.patterns = append(pm.patterns, pat)
	}
	return pm, nil
}

func hasWildcards(s string) bool {
	return strings.ContainsAny(s, `*?[\`)
}

// compilePattern turns a pattern into an anchored regexp.
func compilePattern(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		ch := p[i]
		switch ch {
		case '*':
			if i+1 < len(p) && p[i+1] == '*' {
				i++
				// "**/" is "**": it may eat the slash.
				if i+1 < len(p) && p[i+1] == '/' {
					i++
				}
				if i+1 >= len(p) {
					b.WriteString(".*")
				} else {
					b.WriteString("(.*/)?")
				}
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '\\':
			if i+1 >= len(p) {
				return nil, errors.New("trailing backslash")
			}
			i++
			b.WriteString(regexp.QuoteMeta(string(p[i])))
		case '[':
			j := i + 1
			if j < len(p) && (p[j] == '^' || p[j] == '!') {
				j++
			}
			if j < len(p) && p[j] == ']' {
				j++
			}
			for j < len(p) && p[j] != ']' {
				j++
			}
			if j >= len(p) {
				return nil, errors.New("unterminated character class")
			}
			class := p[i+1 : j]
			b.WriteByte('[')
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			for k := 0; k < len(class); k++ {
				c := class[k]
				if c == '\\' && k+1 < len(class) {
					k++
					c = class[k]
					b.WriteString(regexp.QuoteMeta(string(c)))
					continue
				}
				if c == '[' || c == ']' {
					b.WriteByte('\\')
				}
				b.WriteByte(c)
			}
			b.WriteByte(']')
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(string(ch)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// Patterns returns the compiled patterns in order.
func (pm *PatternMatcher) Patterns() []*Pattern {
	if pm == nil {
		return nil
	}
	return pm.patterns
}

// Exclusions reports whether some pattern is a "!" exception.
func (pm *PatternMatcher) Exclusions() bool { return pm != nil && pm.exclusions }

// Empty reports whether the matcher has no patterns (it matches nothing).
func (pm *PatternMatcher) Empty() bool { return pm == nil || len(pm.patterns) == 0 }

func cleanRel(file string) string {
	file = path.Clean("/" + filepath.ToSlash(file))
	return strings.TrimPrefix(file, "/")
}

// MatchesOrParentMatches reports whether file (relative to the root) is
// excluded: the last pattern matching it or one of its parent directories
// decides, as in docker's .dockerignore handling.
func (pm *PatternMatcher) MatchesOrParentMatches(file string) bool {
	if pm.Empty() {
		return false
	}
	file = cleanRel(file)
	if file == "" {
		return false
	}
	parents := strings.Split(file, "/")
	parents = parents[:len(parents)-1]
	matched := false
	for _, p := range pm.patterns {
		// An inclusion only matters when not yet matched, an exclusion only
		// when matched.
		if p.Exclusion != matched {
			continue
		}
		match := p.re.MatchString(file)
		for i := 0; !match && i < len(parents); i++ {
			match = p.re.MatchString(strings.Join(parents[:i+1], "/"))
		}
		if match {
			matched = !p.Exclusion
		}
	}
	return matched
}

// ExceptionMayMatchUnder reports whether a "!" pattern could re-include a
// path below dir, so that an excluded dir must still be walked. It is
// conservative: true when unsure.
func (pm *PatternMatcher) ExceptionMayMatchUnder(dir string) bool {
	if !pm.Exclusions() {
		return false
	}
	dc := strings.Split(cleanRel(dir), "/")
	for _, p := range pm.patterns {
		if !p.Exclusion {
			continue
		}
		n := len(p.literalDirs)
		if !p.openEnded && n <= len(dc) {
			// A literal pattern at or above dir: an exact path that cannot
			// be below dir (a pattern equal to a parent would have
			// re-included dir itself, handled by MatchesOrParentMatches).
			continue
		}
		ok := true
		for i := 0; i < n && i < len(dc); i++ {
			if p.literalDirs[i] != dc[i] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
