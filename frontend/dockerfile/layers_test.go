package dockerfile

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestTooManyLayers: a stage of more layers than overlayfs can stack
// fails at conversion, before anything runs, naming the Dockerfile line
// of the first instruction past the limit; config-only instructions do
// not count, and a stage at the limit converts.
func TestTooManyLayers(t *testing.T) {
	df := func(copies, envs int) string {
		var b strings.Builder
		b.WriteString("FROM scratch\n")
		for i := 0; i < envs; i++ {
			fmt.Fprintf(&b, "ENV E%d=%d\n", i, i)
		}
		for i := 0; i < copies; i++ {
			fmt.Fprintf(&b, "COPY f%d /f%d\n", i, i)
		}
		return b.String()
	}
	if _, _, err := convertString(t, df(MaxLayers, 600), nil); err != nil {
		t.Fatalf("%d COPYs and 600 ENVs: %v", MaxLayers, err)
	}
	_, _, err := convertString(t, df(1000, 0), nil)
	if err == nil {
		t.Fatal("1000 COPYs converted")
	}
	// Line 1 is FROM: the 501st COPY is on line 502.
	for _, want := range []string{"502", "layer 501", "more than the 500 overlayfs can stack", "combine instructions"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	var de *Error
	if !errors.As(err, &de) || de.Line != 502 {
		t.Errorf("error %v: want a Dockerfile error at line 502", err)
	}
}
