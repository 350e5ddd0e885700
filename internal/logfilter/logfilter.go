package logfilter

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"

	"github.com/docker/go-units"
	digest "github.com/opencontainers/go-digest"

	"github.com/builderdev/builder/solver"
)

// DefaultMaxStepBytes is BuildKit's per-step log limit.
const DefaultMaxStepBytes = 2 << 20

// EnvMaxStepBytes is BuildKit's variable for the per-step log limit in
// bytes (-1: no limit), read by MaxStepBytesFromEnv.
const EnvMaxStepBytes = "BUILDKIT_STEP_LOG_MAX_SIZE"

// Mask replaces a secret in output.
const Mask = "****"

// maxHold bounds the bytes of one stream held back waiting for a
// newline; past it the output goes out anyway (keeping the tail that could
// still be the start of a secret).
const maxHold = 64 << 10

// MaxStepBytesFromEnv returns EnvMaxStepBytes, or DefaultMaxStepBytes
// when it is unset.
func MaxStepBytesFromEnv() (int64, error) {
	s := os.Getenv(EnvMaxStepBytes)
	if s == "" {
		return DefaultMaxStepBytes, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < -1 || n == 0 {
		return 0, fmt.Errorf("%s=%q: want a byte count, or -1 for no limit", EnvMaxStepBytes, s)
	}
	return n, nil
}

// Redactor is a solver.Reporter that masks secrets in logs and passes
// everything on to Next.
type Redactor struct {
	next  solver.Reporter
	masks [][]byte // longest first
	hold  int      // bytes a stream keeps back: the longest mask - 1

	mu      sync.Mutex
	streams map[streamKey]*pending
}

type streamKey struct {
	d      digest.Digest
	stream int
}

type pending struct {
	buf []byte
	log solver.Log
}

// NewRedactor masks every value of secrets, its base64 forms (standard,
// raw, URL) and each of its lines of 4 bytes or more. A mask never holds a
// line break: a value read from a file usually ends in a newline, and a
// mask that took it would join the next line onto the masked one, so the
// value itself is masked line by line and its line breaks stay.
func NewRedactor(next solver.Reporter, secrets [][]byte) *Redactor {
	seen := map[string]bool{}
	var masks [][]byte
	add := func(b []byte) {
		if len(bytes.TrimSpace(b)) < 4 || bytes.ContainsAny(b, "\r\n") || seen[string(b)] {
			return
		}
		seen[string(b)] = true
		masks = append(masks, b)
	}
	isBreak := func(r rune) bool { return r == '\n' || r == '\r' }
	for _, s := range secrets {
		for _, v := range [][]byte{s, bytes.TrimRight(s, "\r\n")} {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
				add([]byte(enc.EncodeToString(v)))
			}
		}
		for _, l := range bytes.FieldsFunc(s, isBreak) {
			add(l)
		}
	}
	sort.Slice(masks, func(i, j int) bool { return len(masks[i]) > len(masks[j]) })
	hold := 0
	if len(masks) > 0 {
		hold = len(masks[0]) - 1
	}
	return &Redactor{next: next, masks: masks, hold: hold, streams: map[streamKey]*pending{}}
}

// Status flushes a finished vertex's held output before its status.
func (r *Redactor) Status(s solver.Status) {
	if !s.Completed.IsZero() || s.Err != nil || s.Cached {
		r.flush(s.Digest)
	}
	r.next.Status(s)
}

// Log masks secrets in l; complete lines go on at once, a partial line
// waits for its end (or for the step to finish).
func (r *Redactor) Log(l solver.Log) {
	if len(r.masks) == 0 {
		r.next.Log(l)
		return
	}
	r.mu.Lock()
	k := streamKey{l.Digest, l.Stream}
	p := r.streams[k]
	if p == nil {
		p = &pending{}
		r.streams[k] = p
	}
	p.buf = append(p.buf, l.Data...)
	p.log = l
	cut := bytes.LastIndexByte(p.buf, '\n') + 1
	var out []byte
	switch {
	case cut > 0:
		out = r.mask(p.buf[:cut])
		p.buf = append([]byte(nil), p.buf[cut:]...)
	case len(p.buf) > maxHold:
		m := r.mask(p.buf)
		keep := min(r.hold, len(m))
		out = m[:len(m)-keep]
		p.buf = append([]byte(nil), m[len(m)-keep:]...)
	}
	r.mu.Unlock()
	if len(out) > 0 {
		l.Data = out
		r.next.Log(l)
	}
}

// Flush sends the output held back of every vertex (at the end of a
// build, also a failed or cancelled one).
func (r *Redactor) Flush() { r.flush("") }

// flush sends the held output of vertex d ("" for all).
func (r *Redactor) flush(d digest.Digest) {
	r.mu.Lock()
	var logs []solver.Log
	for k, p := range r.streams {
		if d != "" && k.d != d {
			continue
		}
		if len(p.buf) > 0 {
			l := p.log
			l.Data = r.mask(p.buf)
			logs = append(logs, l)
		}
		delete(r.streams, k)
	}
	r.mu.Unlock()
	sort.Slice(logs, func(i, j int) bool {
		if logs[i].Digest != logs[j].Digest {
			return logs[i].Digest < logs[j].Digest
		}
		return logs[i].Stream < logs[j].Stream
	})
	for _, l := range logs {
		r.next.Log(l)
	}
}

// mask returns b with every mask replaced, longest first.
func (r *Redactor) mask(b []byte) []byte {
	out := append([]byte(nil), b...)
	for _, m := range r.masks {
		if bytes.Contains(out, m) {
			out = bytes.ReplaceAll(out, m, []byte(Mask))
		}
	}
	return out
}

// Clipper is a solver.Reporter that passes at most max bytes of each
// vertex's output on to Next, then one line saying the rest was clipped.
type Clipper struct {
	next solver.Reporter
	max  int64

	mu   sync.Mutex
	seen map[digest.Digest]int64
}

// NewClipper clips each vertex's output at max bytes (max < 0: never).
func NewClipper(next solver.Reporter, max int64) *Clipper {
	return &Clipper{next: next, max: max, seen: map[digest.Digest]int64{}}
}

// Status passes s on.
func (c *Clipper) Status(s solver.Status) { c.next.Status(s) }

// ClippedLine is the line that replaces a step's output past the limit.
func ClippedLine(max int64) string {
	return fmt.Sprintf("[output clipped, log limit %s reached]", units.BytesSize(float64(max)))
}

// Log passes l on while its vertex is under the limit.
func (c *Clipper) Log(l solver.Log) {
	if c.max < 0 {
		c.next.Log(l)
		return
	}
	c.mu.Lock()
	n := c.seen[l.Digest]
	if n > c.max {
		c.mu.Unlock()
		return
	}
	room := c.max - n
	c.seen[l.Digest] = n + int64(len(l.Data))
	c.mu.Unlock()
	if int64(len(l.Data)) <= room {
		c.next.Log(l)
		return
	}
	if room > 0 {
		head := l
		head.Data = l.Data[:room]
		c.next.Log(head)
	}
	c.next.Log(solver.Log{Digest: l.Digest, Stream: l.Stream, Timestamp: l.Timestamp, Data: []byte("\n" + ClippedLine(c.max) + "\n")})
}

// Tee is a solver.Reporter that passes everything to each of its
// reporters in turn.
type Tee []solver.Reporter

// Status implements solver.Reporter.
func (t Tee) Status(s solver.Status) {
	for _, r := range t {
		r.Status(s)
	}
}

// Log implements solver.Reporter.
func (t Tee) Log(l solver.Log) {
	for _, r := range t {
		r.Log(l)
	}
}

// warner is a reporter that also shows build warnings (the progress
// display); the filters pass warnings on to it.
type warner interface {
	Warn(line int, msg string)
}

// warn passes a warning on to r when r shows warnings.
func warn(r solver.Reporter, line int, msg string) {
	if w, ok := r.(warner); ok {
		w.Warn(line, msg)
	}
}

// Warn passes a build warning on, its secrets masked.
func (r *Redactor) Warn(line int, msg string) { warn(r.next, line, string(r.mask([]byte(msg)))) }

// Warn passes a build warning on.
func (c *Clipper) Warn(line int, msg string) { warn(c.next, line, msg) }

// Warn passes a build warning on to each reporter.
func (t Tee) Warn(line int, msg string) {
	for _, r := range t {
		warn(r, line, msg)
	}
}
