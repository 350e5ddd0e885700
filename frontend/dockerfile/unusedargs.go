package dockerfile

import (
	"sort"
	"strings"
)

// consume records that the build arg key was declared by an ARG of the
// build (a global one, or one of a stage the target needs).
func (c *converter) consume(key string) {
	if c.consumed == nil {
		c.consumed = map[string]bool{}
	}
	c.consumed[key] = true
}

// unusedBuildArgs are the --build-arg names no ARG of the build declared,
// sorted: BuildKit warns "One or more build-args [...] were not consumed".
// The args BuildKit uses without a declaration never count: the automatic
// platform args, the proxy args, BUILDKIT_* and SOURCE_DATE_EPOCH.
func (c *converter) unusedBuildArgs() []string {
	var out []string
	for k := range c.opt.BuildArgs {
		if c.consumed[k] || builtinArg(k) {
			continue
		}
		if _, ok := c.defaults.Get(k); ok {
			continue
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func builtinArg(k string) bool {
	if strings.HasPrefix(k, "BUILDKIT_") || k == "SOURCE_DATE_EPOCH" {
		return true
	}
	for _, p := range proxyArgs {
		if strings.EqualFold(k, p) {
			return true
		}
	}
	return false
}
