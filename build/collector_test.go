package build

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/builderdev/builder/report"
	"github.com/builderdev/builder/solver"
	digest "github.com/opencontainers/go-digest"
)

// TestCollectorWallClock: the steps a collector gives the report carry
// no monotonic clock readings, so the page made from them is the page
// made again from their JSON (builder report of a --metadata-file).
func TestCollectorWallClock(t *testing.T) {
	t.Parallel()
	c := newCollector(&warnRecorder{})
	t0 := time.Now()
	for i, name := range []string{"a", "b", "c"} {
		start := t0.Add(time.Duration(i) * 3 * time.Millisecond)
		c.Status(solver.Status{Digest: digest.FromString(name), Name: name, Started: start, Completed: time.Now()})
	}
	steps := c.steps()
	for _, s := range steps {
		if s.Started != s.Started.Round(0) || s.Completed != s.Completed.Round(0) {
			t.Fatalf("step %s keeps a monotonic reading: %v", s.Name, s.Started)
		}
	}
	data, err := json.Marshal(steps)
	if err != nil {
		t.Fatal(err)
	}
	var back []report.Step
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := report.WriteHTML(&a, &report.Build{Steps: steps}); err != nil {
		t.Fatal(err)
	}
	if err := report.WriteHTML(&b, &report.Build{Steps: back}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the page differs after a JSON round trip of the steps")
	}
}
