package main

import (
	"strings"
	"testing"
)

// TestMountFromStageKeyedBySource (issue 10 #12): RUN
// --mount=from=STAGE,source=out is keyed on the content of out/, so a change
// elsewhere in that stage does not re-run the RUN, and a change in out/ does.
func TestMountFromStageKeyedBySource(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	df := `ARG BASE
FROM $BASE AS src
ARG X=1
ARG Y=a
RUN mkdir /out && echo $Y > /out/f && echo $X > /unrelated
FROM $BASE
RUN --mount=from=src,source=/out,target=/m cat /m/f > /copied
`
	root := t.TempDir()
	final := func(progress string) string {
		t.Helper()
		for name, st := range stepStates(progress) {
			if strings.Contains(name, "cat /m/f") {
				return st
			}
		}
		t.Fatalf("no final RUN step in the progress:\n%s", progress)
		return ""
	}
	for _, tc := range []struct {
		x, y, want string
	}{
		{"1", "a", "DONE"},
		{"2", "a", "CACHED"}, // only /unrelated changed
		{"2", "b", "DONE"},   // out/f changed
	} {
		progress, _ := env.buildDockerfile(t, df, root, func(o *BuildOptions) {
			o.BuildArgs["X"], o.BuildArgs["Y"] = tc.x, tc.y
		})
		if got := final(progress); got != tc.want {
			t.Errorf("X=%s Y=%s: the mounting RUN is %s, want %s\n%s", tc.x, tc.y, got, tc.want, progress)
		}
	}
}
