package ops

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

func TestPullLog(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	p := newPullLog(&b)
	p.every = time.Hour
	d := digest.FromString("layer")
	p.progress(d, 0, 3_400_000, false)
	p.progress(d, 1_000_000, 3_400_000, false) // within "every": not shown
	p.progress(d, 3_400_000, 3_400_000, true)
	if err := p.extracting(d, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	p.extracting(d, func() error { return errors.New("bad") })
	want := []string{
		d.String() + " 0B / 3.40MB",
		d.String() + " 3.40MB / 3.40MB 0.0s done",
		"extracting " + d.String(),
		"extracting " + d.String() + " 0.0s done",
		"extracting " + d.String(),
	}
	if got := strings.Split(strings.TrimSpace(b.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", b.String(), strings.Join(want, "\n"))
	}
	for n, want := range map[int64]string{0: "0B", 999: "999B", 1000: "1.00kB", 51_234_567: "51.23MB", 2e9: "2.00GB"} {
		if got := decimalBytes(n); got != want {
			t.Errorf("decimalBytes(%d) = %s, want %s", n, got, want)
		}
	}
}
