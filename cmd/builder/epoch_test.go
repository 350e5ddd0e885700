package main

import (
	"strings"
	"testing"

	"github.com/builderdev/builder/solver"
)

// warnRecorder is a reporter that records warnings.
type warnRecorder struct {
	warnings []string
}

func (w *warnRecorder) Status(solver.Status) {}
func (w *warnRecorder) Log(solver.Log)       {}
func (w *warnRecorder) Warn(line int, msg string) {
	w.warnings = append(w.warnings, msg)
}

func TestWarnRewriteWithoutEpoch(t *testing.T) {
	rewrite := Output{Type: "oci", Dest: "out.tar", Attrs: map[string]string{"rewrite-timestamp": "true"}}
	plain := Output{Type: "oci", Dest: "out.tar", Attrs: map[string]string{}}
	tests := []struct {
		name    string
		outputs []Output
		args    map[string]string
		want    int
	}{
		{"rewrite without epoch", []Output{rewrite}, nil, 1},
		{"two outputs warn once", []Output{rewrite, rewrite}, map[string]string{"X": "1"}, 1},
		{"rewrite with epoch", []Output{rewrite}, map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}, 0},
		{"no rewrite", []Output{plain}, nil, 0},
		{"rewrite=false", []Output{{Type: "oci", Attrs: map[string]string{"rewrite-timestamp": "false"}}}, nil, 0},
		{"invalid epoch fails elsewhere", []Output{rewrite}, map[string]string{"SOURCE_DATE_EPOCH": "soon"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &warnRecorder{}
			// Through the collector, as exportImage gets it.
			warnRewriteWithoutEpoch(newCollector(rec), tt.outputs, tt.args)
			if len(rec.warnings) != tt.want {
				t.Fatalf("warnings %q, want %d", rec.warnings, tt.want)
			}
			for _, w := range rec.warnings {
				if w != noEpochWarning {
					t.Errorf("warning %q, want BuildKit's %q", w, noEpochWarning)
				}
			}
		})
	}
}

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
