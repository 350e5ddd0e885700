package build

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
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
	t.Parallel()
	rewrite := Output{Type: OCI, Dest: "out.tar", Layers: ops.LayerOptions{RewriteTimestamp: true}}
	plain := Output{Type: OCI, Dest: "out.tar"}
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
		{"invalid epoch fails elsewhere", []Output{rewrite}, map[string]string{"SOURCE_DATE_EPOCH": "soon"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &warnRecorder{}
			// Through the collector, as the export gets it.
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

func TestWithLabels(t *testing.T) {
	t.Parallel()
	base := map[string]string{"a": "1", "b": "2"}
	got := withLabels(base, map[string]string{"b": "x", "c": "y=z", "d": ""})
	want := map[string]string{"a": "1", "b": "x", "c": "y=z", "d": ""}
	if len(got) != len(want) {
		t.Fatalf("labels %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("label %s = %q, want %q", k, got[k], v)
		}
	}
	if base["b"] != "2" {
		t.Error("withLabels changed the Dockerfile's labels")
	}
	if withLabels(nil, nil) != nil {
		t.Error("no labels must keep no labels")
	}
}

func TestOutputValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		out Output
		ok  bool
	}{
		{Output{Type: OCI, Dest: "x.tar"}, true},
		{Output{Type: OCI}, false},
		{Output{Type: Image, Push: true, Names: []string{"a"}}, true},
		{Output{Type: Image, Dest: "x"}, false},
		{Output{Type: Local, Dest: "d", Push: true}, false},
		{Output{Type: "zip", Dest: "x"}, false},
		{Output{Type: Docker, Dest: "x", Layers: ops.LayerOptions{Compression: "lz4"}}, false},
	} {
		if err := tt.out.validate(); (err == nil) != tt.ok {
			t.Errorf("validate(%+v) = %v", tt.out, err)
		}
	}
}

func TestValidateRequest(t *testing.T) {
	t.Parallel()
	two := []llb.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
	docker := []Output{{Type: Docker, Dest: "x.tar"}}
	if err := (Request{Platforms: two, Outputs: docker}).validate(); err == nil || !strings.Contains(err.Error(), "docker exporter does not support exporting manifest lists") {
		t.Errorf("two platforms to type=docker: %v", err)
	}
	if err := (Request{Platforms: two[:1], Outputs: docker}).validate(); err != nil {
		t.Errorf("one platform to type=docker: %v", err)
	}
	if err := (Request{Platforms: two, Outputs: []Output{{Type: OCI, Dest: "x.tar"}}}).validate(); err != nil {
		t.Errorf("two platforms to type=oci: %v", err)
	}
}

// TestOutputNames: -t replaces an output's name= (buildx sets the
// exporters' names from the tags); a push needs one or the other, and
// says so before the build.
func TestOutputNames(t *testing.T) {
	t.Parallel()
	named := Output{Type: Image, Push: true, Names: []string{"reg/b:1"}}
	if got := named.names([]string{"reg/a:1"}); !slices.Equal(got, []string{"reg/a:1"}) {
		t.Errorf("names with -t: %v, want the tags only", got)
	}
	if got := named.names(nil); !slices.Equal(got, []string{"reg/b:1"}) {
		t.Errorf("names without -t: %v", got)
	}
	for _, tt := range []struct {
		req  Request
		want []string
	}{
		{Request{Tags: []string{"a", "b"}, Outputs: []Output{named, named}}, []string{"a", "b"}},
		{Request{Outputs: []Output{named, {Type: Image, Names: []string{"c", "reg/b:1"}}}}, []string{"reg/b:1", "c"}},
		{Request{Tags: []string{"a"}, Outputs: []Output{{Type: OCI, Dest: "x.tar", Names: []string{"o"}}}}, []string{"a"}},
	} {
		if _, got := storeOutput(tt.req); !slices.Equal(got, tt.want) {
			t.Errorf("storeOutput(%+v) names %v, want %v", tt.req, got, tt.want)
		}
	}
	push := []Output{{Type: Image, Push: true}}
	if err := (Request{Outputs: push}).validate(); !errors.Is(err, errNoPushName) {
		t.Errorf("a push without a name: %v", err)
	}
	if err := (Request{Tags: []string{"reg/a:1"}, Outputs: push}).validate(); err != nil {
		t.Errorf("a push with -t: %v", err)
	}
}
