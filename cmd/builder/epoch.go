package main

import "github.com/builderdev/builder/solver/ops"

// withEpoch completes an output's rewrite-timestamp=true with the build's
// SOURCE_DATE_EPOCH (--build-arg or the environment). Without an epoch the
// attribute does nothing, as in BuildKit (which only warns).
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
