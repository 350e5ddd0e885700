package main

import (
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
)

// withEpoch completes an output's rewrite-timestamp=true with the build's
// SOURCE_DATE_EPOCH (--build-arg or the environment). Without an epoch the
// attribute does nothing, as in BuildKit (which only warns: see
// warnRewriteWithoutEpoch).
func withEpoch(lo ops.LayerOptions, buildArgs map[string]string) (ops.LayerOptions, error) {
	if !lo.RewriteTimestamp {
		return lo, nil
	}
	epoch, ok, err := sourceDateEpoch(buildArgs)
	if err != nil {
		return lo, err
	}
	if !ok {
		lo.RewriteTimestamp = false
		return lo, nil
	}
	lo.SourceDateEpoch = epoch.Unix()
	return lo, nil
}

// noEpochWarning is BuildKit's warning for rewrite-timestamp=true without
// SOURCE_DATE_EPOCH (exporter/containerimage).
const noEpochWarning = "rewrite-timestamp is specified, but no source-date-epoch was found"

// warner is a reporter that also shows build warnings (the progress
// display, or the collector in front of it).
type warner interface {
	Warn(line int, msg string)
}

// Warn passes a build warning on to the display behind the collector.
func (c *collector) Warn(line int, msg string) {
	if w, ok := c.next.(warner); ok {
		w.Warn(line, msg)
	}
}

// warnRewriteWithoutEpoch warns once when an output asks for
// rewrite-timestamp=true but the build has no SOURCE_DATE_EPOCH: the
// layers are exported with their times unchanged.
func warnRewriteWithoutEpoch(r solver.Reporter, outputs []Output, buildArgs map[string]string) {
	if _, ok, err := sourceDateEpoch(buildArgs); ok || err != nil {
		return
	}
	for _, out := range outputs {
		if lo, err := out.layerOptions(); err == nil && lo.RewriteTimestamp {
			if w, ok := r.(warner); ok {
				w.Warn(0, noEpochWarning)
			}
			return
		}
	}
}
