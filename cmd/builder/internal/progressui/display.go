package progressui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/builderdev/builder/internal/pty"
	"github.com/builderdev/builder/solver"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Modes accepted by New.
const (
	ModeAuto  = "auto"
	ModePlain = "plain"
	ModeTTY   = "tty"
	// ModeQuiet shows nothing (the caller prints the result).
	ModeQuiet = "quiet"
	// ModeRawJSON writes one JSON object per event, BuildKit's
	// SolveStatus (see rawjson.go).
	ModeRawJSON = "rawjson"
)

// Modes are the modes New accepts, for flags and completion.
var Modes = []string{ModeAuto, ModePlain, ModeTTY, ModeQuiet, ModeRawJSON}

const (
	// maxPartial is how much of an unterminated output line is held back
	// before it is shown as a line of its own.
	maxPartial = 32 << 10
	// tailLines is how many output lines of a step are kept for the live
	// view and for the error report at the end of a tty build.
	tailLines = 10
)

// Option configures a Display.
type Option func(*Display)

// WithClock makes the display read the time from now instead of time.Now
// (for tests).
func WithClock(now func() time.Time) Option {
	return func(d *Display) { d.now = now }
}

// WithSize sets the terminal size used by tty mode when the writer is not a
// terminal whose size can be asked (for tests and pipes forced to tty).
func WithSize(width, height int) Option {
	return func(d *Display) { d.width, d.height = width, height }
}

// Display shows solver progress. It implements solver.Reporter and is safe
// for concurrent use.
type Display struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	now      func() time.Time
	width    int
	height   int
	start    time.Time
	vertices map[digest.Digest]*vertex
	order    []*vertex // in order of first appearance
	// groups are the progress groups by ID; grouped maps a member's
	// digest to its group's key in vertices.
	groups   map[string]*group
	grouped  map[digest.Digest]digest.Digest
	warnings []warning
	closed   bool
	err      error // first write error

	plain plainState
	live  liveState
	// quiet and raw are ModeQuiet and ModeRawJSON.
	quiet bool
	raw   *rawJSON
}

var _ solver.Reporter = (*Display)(nil)

type warning struct {
	line int
	msg  string
}

// vertex is what the display knows of one vertex.
type vertex struct {
	digest    digest.Digest
	name      string
	started   time.Time
	completed time.Time
	cached    bool
	err       error
	stats     *solver.Stats
	// cacheMiss says why the step runs although the cache was asked.
	cacheMiss string

	named     bool         // a status has been seen
	logBase   time.Time    // when output timing starts: started, or the first log
	partial   [2][]byte    // unterminated output of stdout, stderr
	partAt    [2]time.Time // timestamp of the first byte in partial
	tail      []logLine    // the last tailLines output lines
	index     int          // plain: the number shown, 0 until first printed
	final     bool         // plain: the final line (DONE, CACHED, ERROR) is printed
	pending   []logLine    // plain: complete lines not printed yet
	missShown bool         // plain: the cache miss line is printed
}

// logLine is one line of a step's output.
type logLine struct {
	at   time.Time
	text string
}

// format returns the line as shown: "0.123 text", the time in seconds since
// the step started.
func (v *vertex) format(l logLine) string {
	at := max(l.at.Sub(v.logBase), 0)
	if l.text == "" {
		return fmt.Sprintf("%.3f", at.Seconds())
	}
	return fmt.Sprintf("%.3f %s", at.Seconds(), l.text)
}

func (v *vertex) isStarted() bool { return !v.started.IsZero() }

// isComplete reports whether the vertex is done: completed, failed or cached.
func (v *vertex) isComplete() bool { return !v.completed.IsZero() || v.err != nil || v.cached }

// wall is the step's run time.
func (v *vertex) wall() time.Duration {
	if v.started.IsZero() || v.completed.IsZero() {
		return 0
	}
	return v.completed.Sub(v.started)
}

// New returns a display writing to w. mode is "plain", "tty", or "auto" (or
// empty), which picks tty when w is a terminal and plain otherwise.
func New(w io.Writer, mode string, opts ...Option) (*Display, error) {
	d := &Display{w: w, now: time.Now, vertices: map[digest.Digest]*vertex{},
		groups: map[string]*group{}, grouped: map[digest.Digest]digest.Digest{}}
	for _, o := range opts {
		o(d)
	}
	switch mode {
	case ModePlain:
	case ModeTTY:
		d.tty = true
	case ModeAuto, "":
		d.tty = isTerminal(w)
	case ModeQuiet:
		d.quiet = true
	case ModeRawJSON:
		d.raw = newRawJSON(w)
	default:
		return nil, fmt.Errorf("progress mode %q: want auto, plain, tty, quiet or rawjson", mode)
	}
	d.start = d.now()
	if d.tty {
		if d.width == 0 || d.height == 0 {
			d.width, d.height = terminalSize(w)
		}
		d.startLive()
	}
	return d, nil
}

// isTerminal reports whether w is a terminal that understands redraws.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && os.Getenv("TERM") != "dumb" && pty.IsTerminal(int(f.Fd()))
}

// terminalSize returns w's size, or 80x25 when it cannot be asked.
func terminalSize(w io.Writer) (width, height int) {
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 && ws.Row > 0 {
			return int(ws.Col), int(ws.Row)
		}
	}
	return 80, 25
}

// get returns the vertex for dgst, adding it when it is new.
func (d *Display) get(dgst digest.Digest) *vertex {
	v := d.vertices[dgst]
	if v == nil {
		v = &vertex{digest: dgst, name: shortName(dgst)}
		d.vertices[dgst] = v
		d.order = append(d.order, v)
	}
	return v
}

func shortName(dgst digest.Digest) string {
	if e := dgst.Encoded(); len(e) > 12 {
		return e[:12]
	}
	return dgst.String()
}

// Status records a change of a vertex's state.
func (d *Display) Status(s solver.Status) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.quiet {
		return
	}
	if d.raw != nil {
		d.raw.status(s)
		return
	}
	if s.ProgressGroup != nil {
		var shown bool
		if s, shown = d.groupStatus(s); !shown {
			return
		}
	}
	v := d.get(s.Digest)
	v.named = true
	if s.Name != "" {
		v.name = s.Name
	}
	if !s.Started.IsZero() {
		v.started = s.Started
		if v.logBase.IsZero() || v.logBase.After(s.Started) {
			v.logBase = s.Started
		}
	}
	if !s.Completed.IsZero() {
		v.completed = s.Completed
	}
	v.cached = v.cached || s.Cached
	if s.CacheMiss != "" {
		v.cacheMiss = s.CacheMiss
	}
	if s.Err != nil {
		v.err = s.Err
	}
	if s.Stats != nil {
		st := *s.Stats
		v.stats = &st
	}
	if v.isComplete() {
		d.flushPartial(v)
	}
	if d.tty {
		d.live.dirty = true
		return
	}
	d.plainStatus(v)
}

// group is a progress group: several vertices shown as one step, as
// buildx shows BuildKit's (COPY --link's copy and merge).
type group struct {
	key     digest.Digest // the step's key in Display.vertices
	name    string
	members []digest.Digest // in order of first status
	last    map[digest.Digest]solver.Status
	shown   bool // a member that is not weak has started, or one failed
}

// groupStatus records the status of a member of a progress group and
// returns the group's status: started with its first member, complete when
// all are, cached when all are, failed when one did. shown is false while
// only weak members have started (as in buildx, the group is hidden then).
func (d *Display) groupStatus(s solver.Status) (out solver.Status, shown bool) {
	pg := s.ProgressGroup
	g := d.groups[pg.ID]
	if g == nil {
		g = &group{key: digest.Digest("group:" + pg.ID), name: pg.Name, last: map[digest.Digest]solver.Status{}}
		d.groups[pg.ID] = g
	}
	d.grouped[s.Digest] = g.key
	prev, ok := g.last[s.Digest]
	if !ok {
		g.members = append(g.members, s.Digest)
	} else {
		if s.Started.IsZero() {
			s.Started = prev.Started
		}
		if s.Completed.IsZero() {
			s.Completed = prev.Completed
		}
		s.Cached = s.Cached || prev.Cached
		if s.Err == nil {
			s.Err = prev.Err
		}
		if s.CacheMiss == "" {
			s.CacheMiss = prev.CacheMiss
		}
		if s.Stats == nil {
			s.Stats = prev.Stats
		}
	}
	g.last[s.Digest] = s
	if s.Err != nil || (!pg.Weak && (!s.Started.IsZero() || s.Cached)) {
		g.shown = true
	}
	if !g.shown {
		return s, false
	}
	out = solver.Status{Digest: g.key, Name: g.name, Cached: true}
	done := true
	for _, dg := range g.members {
		m := g.last[dg]
		if !m.Started.IsZero() && (out.Started.IsZero() || m.Started.Before(out.Started)) {
			out.Started = m.Started
		}
		if m.Completed.After(out.Completed) {
			out.Completed = m.Completed
		}
		done = done && (!m.Completed.IsZero() || m.Err != nil || m.Cached)
		out.Cached = out.Cached && m.Cached
		if out.Err == nil {
			out.Err = m.Err
		}
		if out.CacheMiss == "" {
			out.CacheMiss = m.CacheMiss
		}
		if m.Stats != nil {
			out.Stats = m.Stats
		}
	}
	if !done {
		out.Completed = time.Time{}
	}
	return out, true
}

// Log records a chunk of a vertex's output.
func (d *Display) Log(l solver.Log) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.quiet {
		return
	}
	if d.raw != nil {
		d.raw.log(l)
		return
	}
	if k, ok := d.grouped[l.Digest]; ok {
		l.Digest = k
	}
	v := d.get(l.Digest)
	if v.logBase.IsZero() {
		v.logBase = l.Timestamp
	}
	s := 0
	if l.Stream == 2 {
		s = 1
	}
	data := l.Data
	for len(data) > 0 {
		if len(v.partial[s]) == 0 {
			v.partAt[s] = l.Timestamp
		}
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			v.partial[s] = append(v.partial[s], data...)
			if len(v.partial[s]) >= maxPartial {
				d.addLine(v, s)
			}
			break
		}
		v.partial[s] = append(v.partial[s], data[:i]...)
		d.addLine(v, s)
		data = data[i+1:]
	}
	if d.tty {
		d.live.dirty = true
		return
	}
	d.plainLogs(v)
}

// addLine moves the partial line of stream s into the vertex's output.
func (d *Display) addLine(v *vertex, s int) {
	line := logLine{at: v.partAt[s], text: string(bytes.TrimSuffix(v.partial[s], []byte("\r")))}
	v.partial[s] = v.partial[s][:0]
	if !d.tty {
		v.pending = append(v.pending, line)
	}
	v.tail = append(v.tail, line)
	if len(v.tail) > tailLines {
		v.tail = v.tail[len(v.tail)-tailLines:]
	}
}

// flushPartial ends the vertex's unterminated output lines.
func (d *Display) flushPartial(v *vertex) {
	for s := range v.partial {
		if len(v.partial[s]) > 0 {
			d.addLine(v, s)
		}
	}
}

// Warn records a warning to show at the end of the build; line is the
// Dockerfile line it is about (0 for none).
func (d *Display) Warn(line int, msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.raw != nil && !d.closed {
		d.raw.warn(line, msg)
		return
	}
	d.warnings = append(d.warnings, warning{line: line, msg: msg})
}

// Close ends the display: it prints what is still held back, the final
// state (tty), the warnings and a summary of the build. It returns the first
// error writing to the output. Calls after the first do nothing.
func (d *Display) Close() error {
	if d.tty {
		d.stopLive()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return d.err
	}
	d.closed = true
	if d.quiet {
		return nil
	}
	if d.raw != nil {
		return d.raw.err
	}
	for _, v := range d.order {
		d.flushPartial(v)
	}
	if d.tty {
		d.finishLive()
	} else {
		for _, v := range d.order {
			v.named = true // no name is coming any more: show the output under the digest
			d.plainLogs(v)
		}
	}
	d.printWarnings()
	d.printSummary()
	return d.err
}

func (d *Display) printf(format string, args ...any) {
	if d.err != nil {
		return
	}
	if _, err := fmt.Fprintf(d.w, format, args...); err != nil {
		d.err = fmt.Errorf("writing progress: %w", err)
	}
}

func (d *Display) write(b []byte) {
	if d.err != nil {
		return
	}
	if _, err := d.w.Write(b); err != nil {
		d.err = fmt.Errorf("writing progress: %w", err)
	}
}

func (d *Display) printWarnings() {
	if len(d.warnings) == 0 {
		return
	}
	noun := "warnings"
	if len(d.warnings) == 1 {
		noun = "warning"
	}
	d.printf("\n%d %s found:\n", len(d.warnings), noun)
	for _, w := range d.warnings {
		if w.line > 0 {
			d.printf(" - %s (line %d)\n", w.msg, w.line)
		} else {
			d.printf(" - %s\n", w.msg)
		}
	}
}

// printSummary prints one line totalling the build: the number of steps,
// the wall time from the first start to the last completion, the summed run
// time and CPU time of the steps, the highest memory peak of any step and
// the summed I/O.
func (d *Display) printSummary() {
	var (
		steps, cached, failed int
		first, last           time.Time
		busy                  time.Duration
		total                 usage
		haveStats             bool
	)
	for _, v := range d.order {
		if !v.isComplete() {
			continue
		}
		steps++
		switch {
		case v.err != nil:
			failed++
		case v.cached:
			cached++
		}
		if !v.started.IsZero() && (first.IsZero() || v.started.Before(first)) {
			first = v.started
		}
		if v.completed.After(last) {
			last = v.completed
		}
		if !v.cached {
			busy += v.wall()
		}
		if v.stats != nil {
			haveStats = true
			u := usageOf(v.stats)
			total.cpu += u.cpu
			total.io += u.io
			total.mem = max(total.mem, u.mem)
		}
	}
	if steps == 0 {
		return
	}
	var wall time.Duration
	if !first.IsZero() && last.After(first) {
		wall = last.Sub(first)
	}
	counts := fmt.Sprintf("%d cached", cached)
	if failed > 0 {
		counts += fmt.Sprintf(", %d failed", failed)
	}
	stepNoun := "steps"
	if steps == 1 {
		stepNoun = "step"
	}
	d.printf("\nSummary: %d %s (%s) in %s · steps %s", steps, stepNoun, counts, seconds(wall), seconds(busy))
	if haveStats {
		d.printf(" · %s", total)
	}
	d.printf("\n")
}

// errorText is how a failed vertex's error is shown.
func errorText(err error) (text string, canceled bool) {
	if errors.Is(err, context.Canceled) {
		return "CANCELED", true
	}
	return "ERROR: " + err.Error(), false
}
