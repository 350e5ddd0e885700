package progressui

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/solver"
	digest "github.com/opencontainers/go-digest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// at is t0 plus ms milliseconds.
func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func dg(name string) digest.Digest { return digest.FromString(name) }

// event is one call on a display.
type event func(d *Display)

func start(name string, ms int) event {
	return func(d *Display) { d.Status(solver.Status{Digest: dg(name), Name: name, Started: at(ms)}) }
}

func done(name string, startMS, endMS int) event {
	return func(d *Display) {
		d.Status(solver.Status{Digest: dg(name), Name: name, Started: at(startMS), Completed: at(endMS)})
	}
}

func doneStats(name string, startMS, endMS int, s solver.Stats) event {
	return func(d *Display) {
		d.Status(solver.Status{Digest: dg(name), Name: name, Started: at(startMS), Completed: at(endMS), Stats: &s})
	}
}

func cached(name string, ms int) event {
	return func(d *Display) {
		d.Status(solver.Status{Digest: dg(name), Name: name, Started: at(ms), Completed: at(ms), Cached: true})
	}
}

func failed(name string, startMS, endMS int, err error) event {
	return func(d *Display) {
		d.Status(solver.Status{Digest: dg(name), Name: name, Started: at(startMS), Completed: at(endMS), Err: err})
	}
}

func logAt(name string, ms, stream int, data string) event {
	return func(d *Display) {
		d.Log(solver.Log{Digest: dg(name), Stream: stream, Data: []byte(data), Timestamp: at(ms)})
	}
}

func startMiss(name string, ms int, miss string) event {
	return func(d *Display) {
		d.Status(solver.Status{Digest: dg(name), Name: name, Started: at(ms), CacheMiss: miss})
	}
}

// member is a status of name as a member of the progress group id.
func member(id, group string, weak bool, s solver.Status) event {
	return func(d *Display) {
		s.Digest = dg(s.Name)
		s.ProgressGroup = &llb.ProgressGroup{ID: id, Name: group, Weak: weak}
		d.Status(s)
	}
}

func warn(line int, msg string) event { return func(d *Display) { d.Warn(line, msg) } }

const (
	ctxName  = "[internal] load build context"
	fromName = "[1/4] FROM 127.0.0.1:5000/busybox:latest"
	runA     = "[2/4] RUN ./build.sh"
	runB     = "[stage-b 1/1] RUN make"
	copyName = "[3/4] COPY --from=build /out /app"
)

var plainCases = []struct {
	name   string
	events []event
}{
	{
		name: "sequential",
		events: []event{
			start(ctxName, 0),
			done(ctxName, 0, 40),
			cached(fromName, 50),
			start(runA, 60),
			logAt(runA, 183, 1, "hi\n"),
			logAt(runA, 1200, 2, "warning: something\nbuilding 2 files\n"),
			doneStats(runA, 60, 3260, solver.Stats{
				CPUUser: 4 * time.Second, CPUSystem: 1100 * time.Millisecond,
				MemoryPeak: 212 << 20, IORead: 16 << 20, IOWrite: 32 << 20, Wall: 3200 * time.Millisecond,
			}),
			start(copyName, 3300),
			done(copyName, 3300, 3350),
			warn(12, "JSON arguments recommended for CMD"),
			warn(0, "no .dockerignore"),
		},
	},
	{
		name: "interleaved",
		events: []event{
			start(runA, 0),
			start(runB, 10),
			logAt(runA, 100, 1, "a1\n"),
			logAt(runB, 150, 1, "b1\n"),
			logAt(runB, 160, 1, "b2\n"),
			logAt(runA, 300, 1, "a2\n"),
			doneStats(runB, 10, 1010, solver.Stats{CPUUser: time.Second, MemoryPeak: 3 << 20, IOWrite: 1500}),
			logAt(runA, 1100, 1, "a3\n"),
			doneStats(runA, 0, 2000, solver.Stats{CPUUser: 2 * time.Second, MemoryPeak: 10 << 20, IORead: 2 << 30}),
		},
	},
	{
		// A step that starts while another's block is open shows only when
		// it has output or ends; after a step ends, the next running one is
		// opened so that a silent long step is visible.
		name: "silent-concurrent",
		events: []event{
			start("[a 1/1] RUN sleep 1", 0),
			start("[b 1/1] RUN sleep 1", 5),
			start("[c 1/1] RUN sleep 1", 10),
			done("[b 1/1] RUN sleep 1", 5, 1005),
			done("[a 1/1] RUN sleep 1", 0, 1010),
			done("[c 1/1] RUN sleep 1", 10, 1020),
			start("[final 2/4] COPY --from=a /a /a", 1030),
			done("[final 2/4] COPY --from=a /a /a", 1030, 1040),
		},
	},
	{
		name: "error",
		events: []event{
			start(runA, 0),
			start(runB, 0),
			logAt(runA, 500, 2, "make: *** [all] Error 1"), // no newline: shown when the step ends
			failed(runA, 0, 600, errors.New("process \"/bin/sh -c ./build.sh\" did not complete successfully: exit code: 1")),
			failed(runB, 0, 610, fmt.Errorf("run: %w", context.Canceled)),
		},
	},
	{
		// A step that runs although the cache was asked says why, once.
		name: "cache-miss",
		events: []event{
			cached(fromName, 0),
			startMiss(copyName, 10, "cache miss: content of input 1 ([internal] load build context) changed"),
			done(copyName, 10, 50),
			startMiss(runA, 60, "cache miss: input 0 ([3/4] COPY --from=build /out /app) changed"),
			logAt(runA, 100, 1, "built\n"),
			done(runA, 60, 200),
		},
	},
	{
		// COPY --link is a copy (weak) and a merge in one progress group:
		// one step, named after the instruction, as buildx shows it; a
		// group whose merge is cached shows CACHED without its copy.
		name: "link-group",
		events: []event{
			cached(fromName, 0),
			member("g1", "[2/3] COPY --link f ./", true, solver.Status{Name: "[2/3] COPY --link f ./", Started: at(10), CacheMiss: "cache miss: content of input 0 ([internal] load build context) changed"}),
			member("g1", "[2/3] COPY --link f ./", true, solver.Status{Name: "[2/3] COPY --link f ./", Started: at(10), Completed: at(40)}),
			member("g1", "[2/3] COPY --link f ./", false, solver.Status{Name: "[2/3] LINK COPY --link f ./", Started: at(50)}),
			member("g1", "[2/3] COPY --link f ./", false, solver.Status{Name: "[2/3] LINK COPY --link f ./", Started: at(50), Completed: at(70)}),
			member("g2", "[3/3] COPY --link g ./", false, solver.Status{Name: "[3/3] LINK COPY --link g ./", Started: at(80), Completed: at(80), Cached: true}),
			member("g3", "[3/3] COPY --link h ./", true, solver.Status{Name: "[3/3] COPY --link h ./", Started: at(90), Completed: at(95)}),
		},
	},
	{
		name: "partial-lines",
		events: []event{
			start(runA, 1000),
			logAt(runA, 1100, 1, "hel"),
			logAt(runA, 1200, 1, "lo\r\nwor"),
			logAt(runA, 1250, 2, "err"), // its own stream: does not join stdout's line
			logAt(runA, 1300, 1, "ld\n\nlast"),
			logAt(runA, 1400, 2, "or\n"),
			done(runA, 1000, 1500),
		},
	},
	{
		// Output that comes before any status, and a log after the step
		// ended, still carry the vertex's number.
		name: "log-before-status",
		events: []event{
			logAt(runA, 200, 1, "early\n"),
			start(runA, 100),
			done(runA, 100, 400),
			logAt(runA, 500, 1, "late\n"),
			done(ctxName, 0, 10),
		},
	},
}

func TestPlainGolden(t *testing.T) {
	for _, tc := range plainCases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			d, err := New(&out, ModePlain, WithClock(func() time.Time { return at(9999) }))
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range tc.events {
				ev(d)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if got := out.String(); got != string(want) {
				t.Errorf("output differs from %s:\n--- got ---\n%s\n--- want ---\n%s", golden, got, want)
			}
		})
	}
}

func TestNewModes(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tests := []struct {
		mode    string
		w       *os.File
		wantTTY bool
		wantErr bool
	}{
		{mode: "plain", w: f},
		{mode: "tty", w: f, wantTTY: true},
		{mode: "auto", w: f}, // a regular file is not a terminal
		{mode: "", w: f},
		{mode: "fancy", w: f, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			d, err := New(tc.w, tc.mode, WithSize(80, 25))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("New(%q) succeeded, want an error", tc.mode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if d.tty != tc.wantTTY {
				t.Errorf("New(%q): tty = %v, want %v", tc.mode, d.tty, tc.wantTTY)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct{ got, want string }{
		{bytesIEC(0), "0B"},
		{bytesIEC(1023), "1023B"},
		{bytesIEC(1024), "1KiB"},
		{bytesIEC(1536), "1.5KiB"},
		{bytesIEC(212 << 20), "212MiB"},
		{bytesIEC(48<<20 + 1), "48MiB"},
		{bytesIEC(3 << 30), "3GiB"},
		{seconds(3210 * time.Millisecond), "3.2s"},
		{seconds(-time.Second), "0.0s"},
		{usage{cpu: 5100 * time.Millisecond, mem: 212 << 20, io: 48 << 20}.String(), "cpu 5.1s · mem 212MiB peak · io 48MiB"},
		{sanitize("a\tb\rc\x1b[31m"), "a    bc"},
		{stripControl("\x1b[1;31mred\x1b[0m plain\ttab"), "red plain\ttab"},
		{stripControl("\x1b]0;owned title\x07after"), "after"},
		{stripControl("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"), "link"},
		{stripControl("\x1b[2J\x1b[Hclear\x1b(Bcharset\x1b7save"), "clearcharsetsave"},
		{stripControl("50%\r100%\x08\x07"), "50%100%"},
		{stripControl("c1 \u009b31mcsi \u0085nel é✓"), "c1 csi nel é✓"},
		{stripControl("cut\x1b["), "cut"},
		{truncate("abcdef", 4), "abc…"},
		{truncate("abc", 4), "abc"},
		{truncate("abc", 0), ""},
	}
	for i, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("case %d: got %q, want %q", i, tc.got, tc.want)
		}
	}
}

// TestConcurrentPlain runs many steps at once and checks that every output
// line is printed once, under its vertex's number, and that every vertex
// ends exactly once.
func TestConcurrentPlain(t *testing.T) {
	const steps, lines = 8, 50
	var out bytes.Buffer
	d, err := New(&out, ModePlain)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range steps {
		wg.Go(func() {
			name := fmt.Sprintf("step-%d", i)
			begin := time.Now()
			d.Status(solver.Status{Digest: dg(name), Name: name, Started: begin})
			for j := range lines {
				// Split each line over two writes to exercise partial lines.
				d.Log(solver.Log{Digest: dg(name), Stream: 1, Data: fmt.Appendf(nil, "%s line", name), Timestamp: time.Now()})
				d.Log(solver.Log{Digest: dg(name), Stream: 1, Data: fmt.Appendf(nil, " %d\n", j), Timestamp: time.Now()})
			}
			d.Status(solver.Status{Digest: dg(name), Name: name, Started: begin, Completed: time.Now()})
		})
	}
	wg.Wait()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	index := map[string]string{} // step name -> "#N"
	seen := map[string]int{}
	finals := map[string]int{}
	for _, l := range strings.Split(out.String(), "\n") {
		num, rest, ok := strings.Cut(l, " ")
		if !ok || !strings.HasPrefix(num, "#") {
			continue
		}
		if strings.HasPrefix(rest, "step-") && !strings.Contains(rest, "line") {
			if old, ok := index[rest]; ok && old != num {
				t.Fatalf("%s shown as %s and %s", rest, old, num)
			}
			index[rest] = num
			continue
		}
		if strings.HasPrefix(rest, "DONE") {
			finals[num]++
			continue
		}
		if _, text, ok := strings.Cut(rest, " "); ok && strings.HasPrefix(text, "step-") {
			step, _, _ := strings.Cut(text, " ")
			if index[step] != num {
				t.Errorf("line %q printed under %s, want %s", l, num, index[step])
			}
			seen[text]++
		}
	}
	if len(index) != steps {
		t.Fatalf("got %d vertex headers, want %d:\n%s", len(index), steps, out.String())
	}
	for i := range steps {
		name := fmt.Sprintf("step-%d", i)
		if finals[index[name]] != 1 {
			t.Errorf("%s: %d final lines, want 1", name, finals[index[name]])
		}
		for j := range lines {
			if text := fmt.Sprintf("%s line %d", name, j); seen[text] != 1 {
				t.Errorf("%q printed %d times, want once", text, seen[text])
			}
		}
	}
}

// lockedBuffer is a bytes.Buffer that the redraw goroutine and the test
// can use at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestTTYRedrawsAndFinishes(t *testing.T) {
	var out lockedBuffer
	now := at(0)
	var clockMu sync.Mutex
	clock := func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		return now
	}
	d, err := New(&out, ModeTTY, WithClock(clock), WithSize(60, 20))
	if err != nil {
		t.Fatal(err)
	}
	cached(fromName, 0)(d)
	start(runA, 0)(d)
	logAt(runA, 100, 1, "compiling main.c\n")
	logAt(runA, 100, 1, "compiling main.c\n")(d)
	clockMu.Lock()
	now = at(1500)
	clockMu.Unlock()

	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "compiling main.c") {
		if time.Now().After(deadline) {
			t.Fatalf("no live frame with the step's output after 5s; output:\n%q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	live := out.String()
	for _, want := range []string{"[+] Building 1.5s (1/2)", " => CACHED " + fromName, " => " + runA, "1.5s", " => => # 0.100 compiling main.c", "\x1b[K"} {
		if !strings.Contains(live, want) {
			t.Errorf("live frame lacks %q:\n%q", want, live)
		}
	}

	failed(runA, 0, 2000, errors.New("exit code: 2"))(d)
	warn(3, "FROM uses a mutable tag")(d)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	final := out.String()[len(live):]
	for _, want := range []string{
		"\x1b[", // moves back over the last frame
		"[+] Building 1.5s (2/2) FAILED",
		" => ERROR " + runA,
		"------\n > " + runA + ":\n0.100 compiling main.c\n------\nERROR: exit code: 2\n",
		"1 warning found:\n - FROM uses a mutable tag (line 3)\n",
		"Summary: 2 steps (1 cached, 1 failed) in 2.0s · steps 2.0s\n",
	} {
		if !strings.Contains(final, want) {
			t.Errorf("final output lacks %q:\n%q", want, final)
		}
	}
	if strings.Contains(final[strings.LastIndex(final, "[+]"):], "=> => #") {
		t.Errorf("final frame shows live output lines:\n%q", final)
	}
	// After Close nothing is drawn any more.
	n := len(out.String())
	start(runB, 0)(d)
	time.Sleep(3 * redrawInterval)
	if len(out.String()) != n {
		t.Errorf("display drew after Close")
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestFrameFitsTerminal(t *testing.T) {
	tests := []struct {
		name      string
		finished  int
		running   int
		logs      int
		height    int
		wantLines int
		mustHave  []string
	}{
		{name: "all fit", finished: 3, running: 1, logs: 2, height: 20, wantLines: 1 + 3 + 1 + 2},
		{name: "drop finished", finished: 30, running: 2, logs: 8, height: 20, wantLines: 19,
			mustHave: []string{"running-0", "running-1", "# 0.000 log 7"}},
		{name: "running alone too tall", finished: 0, running: 5, logs: 6, height: 10, wantLines: 9,
			mustHave: []string{"running-4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(&bytes.Buffer{}, ModePlain, WithClock(func() time.Time { return at(5000) }), WithSize(50, tc.height))
			if err != nil {
				t.Fatal(err)
			}
			d.tty = true // render frames without the redraw goroutine
			for i := range tc.finished {
				done(fmt.Sprintf("finished-%d", i), 0, 10)(d)
			}
			for i := range tc.running {
				name := fmt.Sprintf("running-%d", i)
				start(name, 0)(d)
				for j := range tc.logs {
					logAt(name, 0, 1, fmt.Sprintf("log %d\n", j))(d)
				}
			}
			lines := d.frame(false)
			if len(lines) != tc.wantLines {
				t.Errorf("frame has %d lines, want %d:\n%s", len(lines), tc.wantLines, strings.Join(lines, "\n"))
			}
			all := strings.Join(lines, "\n")
			for _, want := range tc.mustHave {
				if !strings.Contains(all, want) {
					t.Errorf("frame lacks %q:\n%s", want, all)
				}
			}
			for _, l := range lines {
				if n := len([]rune(l)); n > 49 {
					t.Errorf("line %q is %d runes wide, terminal is 50", l, n)
				}
			}
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestCloseReportsWriteError(t *testing.T) {
	d, err := New(failWriter{}, ModePlain)
	if err != nil {
		t.Fatal(err)
	}
	done(ctxName, 0, 10)(d)
	if err := d.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Close() = %v, want the write error", err)
	}
}

func TestQuietAndRawJSON(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d1, d2 := digest.FromString("one"), digest.FromString("two")
	feed := func(d *Display) {
		d.Status(solver.Status{Digest: d1, Name: "[1/2] FROM x", Started: t0})
		d.Status(solver.Status{Digest: d1, Name: "[1/2] FROM x", Started: t0, Completed: t0.Add(time.Second), Cached: true})
		d.Status(solver.Status{Digest: d2, Name: "[2/2] RUN make", Inputs: []digest.Digest{d1}, Started: t0, CacheMiss: "cache miss: new"})
		d.Log(solver.Log{Digest: d2, Stream: 2, Data: []byte("oops\n"), Timestamp: t0})
		d.Status(solver.Status{Digest: d2, Name: "[2/2] RUN make", Inputs: []digest.Digest{d1}, Started: t0, Completed: t0.Add(2 * time.Second),
			Err: errors.New("exit code: 2"), Stats: &solver.Stats{CPUUser: time.Second, PidsPeak: 3}})
		d.Warn(3, "JSONArgsRecommended: use JSON")
		d.Close()
	}
	var quiet bytes.Buffer
	d, err := New(&quiet, ModeQuiet)
	if err != nil {
		t.Fatal(err)
	}
	feed(d)
	if quiet.Len() != 0 {
		t.Errorf("quiet printed %q", quiet.String())
	}

	var raw bytes.Buffer
	if d, err = New(&raw, ModeRawJSON); err != nil {
		t.Fatal(err)
	}
	feed(d)
	lines := strings.Split(strings.TrimSpace(raw.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("rawjson: %d lines, want one per event:\n%s", len(lines), raw.String())
	}
	var events []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		events = append(events, m)
	}
	v := events[1]["vertexes"].([]any)[0].(map[string]any)
	if v["digest"] != d1.String() || v["cached"] != true || v["completed"] != "2026-01-01T00:00:01Z" || v["name"] != "[1/2] FROM x" {
		t.Errorf("cached vertex %v", v)
	}
	lg := events[3]["logs"].([]any)[0].(map[string]any)
	if lg["vertex"] != d2.String() || lg["stream"] != float64(2) || lg["data"] != base64.StdEncoding.EncodeToString([]byte("oops\n")) {
		t.Errorf("log %v", lg)
	}
	if v := events[2]["vertexes"].([]any)[0].(map[string]any); v["cacheMiss"] != "cache miss: new" {
		t.Errorf("running vertex %v", v)
	}
	v = events[4]["vertexes"].([]any)[0].(map[string]any)
	if v["error"] != "exit code: 2" || v["inputs"].([]any)[0] != d1.String() || v["stats"].(map[string]any)["pidsPeak"] != float64(3) {
		t.Errorf("failed vertex %v", v)
	}
	w := events[5]["warnings"].([]any)[0].(map[string]any)
	if w["short"] != base64.StdEncoding.EncodeToString([]byte("JSONArgsRecommended: use JSON")) || w["range"].([]any)[0].(map[string]any)["start"].(map[string]any)["line"] != float64(3) {
		t.Errorf("warning %v", w)
	}
}

// rawjson shows every vertex of a progress group, each with the group as
// BuildKit's progressGroup field, for the reader to merge them as buildx.
func TestRawJSONProgressGroup(t *testing.T) {
	var raw bytes.Buffer
	d, err := New(&raw, ModeRawJSON)
	if err != nil {
		t.Fatal(err)
	}
	member("g1", "[2/2] COPY --link f ./", true, solver.Status{Name: "[2/2] COPY --link f ./", Started: t0})(d)
	d.Close()
	var ev struct {
		Vertexes []struct {
			Name          string
			ProgressGroup map[string]any `json:"progressGroup"`
		}
	}
	if err := json.Unmarshal(raw.Bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Vertexes) != 1 || fmt.Sprint(ev.Vertexes[0].ProgressGroup) != "map[id:g1 name:[2/2] COPY --link f ./ weak:true]" {
		t.Errorf("rawjson %s", raw.String())
	}
}
