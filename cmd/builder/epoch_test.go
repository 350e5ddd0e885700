package main

import (
	"strings"
	"testing"
)

// noEpochWarning is BuildKit's warning for rewrite-timestamp=true without
// SOURCE_DATE_EPOCH.
const noEpochWarning = "rewrite-timestamp is specified, but no source-date-epoch was found"

// TestRewriteTimestampWithoutEpochWarns: the build succeeds and its
// progress ends with BuildKit's warning, once.
func TestRewriteTimestampWithoutEpochWarns(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	progress, _ := env.buildDockerfile(t, "ARG BASE\nFROM $BASE\nRUN echo hi > /hi\n", t.TempDir(), func(o *BuildOptions) {
		delete(o.BuildArgs, "SOURCE_DATE_EPOCH")
		o.Outputs[0].Attrs["rewrite-timestamp"] = "true"
	})
	if !strings.Contains(progress, "\n - "+noEpochWarning+"\n") || strings.Count(progress, noEpochWarning) != 1 {
		t.Errorf("no rewrite-timestamp warning in the progress:\n%s", progress)
	}
}
