package build

import (
	"fmt"
	"strconv"
	"time"

	"github.com/builderdev/builder/solver/ops"
)

// SourceDateEpoch is the SOURCE_DATE_EPOCH build arg as a time; ok is
// false when it is unset or empty, or "context" (the time of the build
// context's source: a local context has none, as in BuildKit).
func SourceDateEpoch(args map[string]string) (t time.Time, ok bool, err error) {
	v, ok := args["SOURCE_DATE_EPOCH"]
	if !ok || v == "" || v == "context" {
		return time.Time{}, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("invalid SOURCE_DATE_EPOCH %q: want seconds since 1970-01-01 UTC: %w", v, err)
	}
	return time.Unix(n, 0).UTC(), true, nil
}

// withEpoch completes an output's RewriteTimestamp with the build's
// SOURCE_DATE_EPOCH. Without an epoch the option does nothing, as in
// BuildKit (which only warns: see warnRewriteWithoutEpoch).
func withEpoch(lo ops.LayerOptions, buildArgs map[string]string) (ops.LayerOptions, error) {
	if !lo.RewriteTimestamp {
		return lo, nil
	}
	epoch, ok, err := SourceDateEpoch(buildArgs)
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

// warnRewriteWithoutEpoch warns once when an output asks for
// RewriteTimestamp but the build has no SOURCE_DATE_EPOCH: the layers are
// exported with their times unchanged.
func warnRewriteWithoutEpoch(r Reporter, outputs []Output, buildArgs map[string]string) {
	if _, ok, err := SourceDateEpoch(buildArgs); ok || err != nil {
		return
	}
	for _, out := range outputs {
		if out.Layers.RewriteTimestamp {
			r.Warn(0, noEpochWarning)
			return
		}
	}
}
