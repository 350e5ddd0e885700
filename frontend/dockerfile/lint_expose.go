package dockerfile

import (
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// lintExpose runs BuildKit's EXPOSE checks on the expanded specs, in order:
// ExposeProtoCasing (a protocol that is not lowercase) and
// ExposeInvalidFormat (an IP address or host port, which EXPOSE cannot
// publish). Specs whose port is empty are left to parsePorts' error.
func (c *converter) lintExpose(specs []string, loc []parser.Range) {
	if c.lint == nil {
		return
	}
	for _, raw := range specs {
		parts := strings.Split(raw, ":")
		n := len(parts)
		containerPort := parts[n-1]
		hostPart := n > 1
		port, proto, _ := strings.Cut(containerPort, "/")
		if port == "" {
			continue
		}
		if proto != strings.ToLower(proto) {
			c.lint.Run(&linter.RuleExposeProtoCasing, loc, linter.RuleExposeProtoCasing.Format(raw))
		}
		if hostPart {
			c.lint.Run(&linter.RuleExposeInvalidFormat, loc, linter.RuleExposeInvalidFormat.Format(raw))
		}
	}
}
