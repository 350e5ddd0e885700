package report

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// sample is a build of two stages: a cached base, two parallel RUNs, a
// COPY joining them, then the exports.
func sample() *Build {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	st := &Stats{CPUUserSeconds: 1.5, CPUSystemSeconds: 0.25, MemoryPeakBytes: 64 << 20, IOReadBytes: 1 << 20, IOWriteBytes: 3 << 20, PidsPeak: 7}
	steps := []Step{
		{Name: "[internal] load build definition from Dockerfile", Digest: "sha256:d0", Started: at(0), Completed: at(10)},
		{Name: "[base 1/1] FROM busybox", Digest: "sha256:b1", Cached: true, Started: at(12), Completed: at(20)},
		{Name: "[a 2/2] RUN make a", Digest: "sha256:a2", Inputs: []string{"sha256:b1"}, Started: at(20), Completed: at(900), CacheMiss: "cache miss: this step was not built before", Stats: st},
		{Name: "[b 2/2] RUN make <b> & \"c\"", Digest: "sha256:c2", Inputs: []string{"sha256:b1"}, Started: at(20), Completed: at(400), Stats: st},
		{Name: "[final 2/2] COPY --from=a --from=b", Digest: "sha256:f2", Inputs: []string{"sha256:a2", "sha256:c2"}, Started: at(900), Completed: at(950)},
		{Name: "exporting layers", Digest: "sha256:e1", Started: at(951), Completed: at(1000)},
	}
	b := &Build{Steps: steps, Summary: Summarize(steps),
		Image: &Image{Names: []string{"docker.io/library/app:1"}, Digest: "sha256:" + strings.Repeat("ab", 32),
			Layers: []Layer{{Digest: "sha256:" + strings.Repeat("1", 64), Size: 2 << 20, CreatedBy: "BusyBox"}, {Digest: "sha256:" + strings.Repeat("2", 64), Size: 512 << 10, CreatedBy: "COPY --from=a /out /"}}},
		Traffic: Traffic{PulledBytes: 2 << 20, PushedBytes: 3 << 20}}
	return b
}

func TestCriticalPath(t *testing.T) {
	t.Parallel()
	got := CriticalPath(sample().Steps)
	want := []string{"sha256:d0", "sha256:b1", "sha256:a2", "sha256:f2", "sha256:e1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("critical path %v, want %v", got, want)
	}
	if got := CriticalPath(nil); len(got) != 0 {
		t.Errorf("critical path of nothing: %v", got)
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	s := sample().Summary
	if s.Steps != 6 || s.Cached != 1 || s.DurationSeconds != 1 || s.CPUUserSeconds != 3 || s.MemoryPeakBytes != 64<<20 || s.PidsPeak != 7 {
		t.Errorf("summary %+v", s)
	}
}

func TestReadMetadata(t *testing.T) {
	t.Parallel()
	b := sample()
	m := map[string]any{"containerimage.digest": "sha256:x", KeySteps: b.Steps, KeySummary: b.Summary, KeyImage: b.Image, KeyTraffic: b.Traffic}
	data, _ := json.Marshal(m)
	got, err := ReadMetadata(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Steps) != 6 || !got.Steps[2].Started.Equal(b.Steps[2].Started) || got.Steps[4].Inputs[1] != "sha256:c2" ||
		got.Image.Layers[1].CreatedBy != "COPY --from=a /out /" || got.Traffic.PushedBytes != 3<<20 || got.Summary.Cached != 1 {
		t.Errorf("read back %+v", got)
	}
	for _, bad := range []string{`{}`, `not json`, `{"builder.steps": 3}`} {
		if _, err := ReadMetadata(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadMetadata(%s) succeeded", bad)
		}
	}
}

// TestWriteHTML checks the page's content and that it is self-contained:
// no URL other than its own anchors, no script.
func TestWriteHTML(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, want := range []string{
		`data-digest="sha256:a2" data-state="ran" data-critical="true"`,
		`data-digest="sha256:c2" data-state="ran">`,
		`data-digest="sha256:b1" data-state="cached" data-critical="true"`,
		"[b 2/2] RUN make &lt;b&gt; &amp; &#34;c&#34;",
		"cache miss: this step was not built before",
		"docker.io/library/app:1", "64.0 MiB", "2.0 MiB", "3.0 MiB", "COPY --from=a /out /", "111111111111",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(html, `class="tl-row step-row`); n != 6 {
		t.Errorf("%d timeline rows, want 6", n)
	}
	if strings.Contains(html, "ZgotmplZ") {
		t.Error("the template refused a value (ZgotmplZ)")
	}
	if m := regexp.MustCompile(`(?i)(https?:|<script|url\(|@import|src=)`).FindString(html); m != "" {
		t.Errorf("page is not self-contained: %q", m)
	}
}

var chromium = "/usr/bin/chromium"

// headless runs Chromium without any network or profile state; it
// returns its stdout.
func headless(t *testing.T, args ...string) []byte {
	t.Helper()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--hide-scrollbars"}
	cmd := exec.Command(chromium, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.Output(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("chromium %v did not finish in 60s", args)
	}
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// TestReportInChromium loads the page in a real browser: the DOM it
// renders has every step in the timeline and the table, the critical
// path, and the layers; a screenshot is a real image.
func TestReportInChromium(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a browser")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("needs chromium (Debian package chromium)")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(f, sample()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dom := string(headless(t, "--dump-dom", "file://"+page))
	for name, want := range map[string]int{
		`class="tl-row step-row`: 6, `<tr class="step"`: 6, `data-critical="true"`: 5, `<tr class="layer"`: 2,
	} {
		if n := strings.Count(dom, name); n != want {
			t.Errorf("rendered DOM has %d %s, want %d", n, name, want)
		}
	}
	if !strings.Contains(dom, "[a 2/2] RUN make a") || !strings.Contains(dom, `id="total-time">1.0s<`) {
		t.Errorf("rendered DOM lacks the steps or the wall time:\n%.2000s", dom)
	}
	shot := filepath.Join(dir, "shot.png")
	headless(t, "--screenshot="+shot, "--window-size=1400,1000", "file://"+page)
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if len(png) < 20000 || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("screenshot: %d bytes, not a rendered page", len(png))
	}
}
