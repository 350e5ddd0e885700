package logfilter

import (
	"bytes"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/builderdev/builder/solver"
)

type recorder struct {
	mu   sync.Mutex
	out  map[digest.Digest]*bytes.Buffer
	logs int
}

func (r *recorder) Status(solver.Status) {}
func (r *recorder) Log(l solver.Log) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.out == nil {
		r.out = map[digest.Digest]*bytes.Buffer{}
	}
	if r.out[l.Digest] == nil {
		r.out[l.Digest] = &bytes.Buffer{}
	}
	r.out[l.Digest].Write(l.Data)
	r.logs++
}

func (r *recorder) text(d digest.Digest) string {
	if b := r.out[d]; b != nil {
		return b.String()
	}
	return ""
}

var (
	stepA = digest.FromString("a")
	stepB = digest.FromString("b")
)

func feed(rep solver.Reporter, d digest.Digest, chunks ...string) {
	for _, c := range chunks {
		rep.Log(solver.Log{Digest: d, Stream: 1, Data: []byte(c), Timestamp: time.Now()})
	}
}

func TestRedactor(t *testing.T) {
	secret := "hunter2-TOKEN"
	pem := "-----BEGIN KEY-----\nAAAAline-one\nBBBBline-two\n-----END KEY-----\n"
	b64 := base64.StdEncoding.EncodeToString([]byte(secret))
	for _, tc := range []struct {
		name   string
		chunks []string
		want   string
	}{
		{"whole", []string{"token is " + secret + "\n"}, "token is ****\n"},
		{"split across chunks", []string{"token is hun", "ter2-TO", "KEN and more\n"}, "token is **** and more\n"},
		{"base64", []string{"b64: " + b64 + "\n"}, "b64: ****\n"},
		{"url base64 raw", []string{base64.RawURLEncoding.EncodeToString([]byte(secret)) + "\n"}, "****\n"},
		{"no newline, flushed at the end", []string{"tail " + secret}, "tail ****"},
		{"each line of a multi-line secret", []string{"x AAAAline-one y\nBBBBline-two\n"}, "x **** y\n****\n"},
		{"short words are left alone", []string{"a b c\n"}, "a b c\n"},
		{"twice on a line", []string{secret + secret + "\n"}, "********\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			r := NewRedactor(rec, [][]byte{[]byte(secret), []byte(pem), []byte("a")})
			feed(r, stepA, tc.chunks...)
			r.Status(solver.Status{Digest: stepA, Completed: time.Now()})
			if got := rec.text(stepA); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	// A long line without newline goes out before its end, but a secret
	// across the point where it is cut is still masked.
	rec := &recorder{}
	r := NewRedactor(rec, [][]byte{[]byte(secret)})
	long := strings.Repeat("x", maxHold-3)
	feed(r, stepA, long+secret[:6])
	if rec.logs == 0 {
		t.Fatal("a long line was held back whole")
	}
	feed(r, stepA, secret[6:]+"\n")
	r.Flush()
	if got := rec.text(stepA); got != long+"****\n" {
		t.Errorf("long line: got ...%q", got[max(0, len(got)-20):])
	}
}

func TestClipper(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	c := NewClipper(rec, 100)
	for range 10 {
		feed(c, stepA, strings.Repeat("a", 30))
	}
	feed(c, stepB, "other step\n")
	got := rec.text(stepA)
	want := strings.Repeat("a", 100) + "\n" + ClippedLine(100) + "\n"
	if got != want {
		t.Errorf("clipped output %q, want %q", got, want)
	}
	if rec.text(stepB) != "other step\n" {
		t.Errorf("the limit is per step: %q", rec.text(stepB))
	}
	if ClippedLine(DefaultMaxStepBytes) != "[output clipped, log limit 2MiB reached]" {
		t.Errorf("ClippedLine = %q", ClippedLine(DefaultMaxStepBytes))
	}
	rec = &recorder{}
	c = NewClipper(rec, -1)
	feed(c, stepA, strings.Repeat("a", 1000))
	if len(rec.text(stepA)) != 1000 {
		t.Error("-1 clipped")
	}
}

func TestMaxStepBytesFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want int64
		err  bool
	}{{"", DefaultMaxStepBytes, false}, {"1024", 1024, false}, {"-1", -1, false}, {"0", 0, true}, {"2MB", 0, true}} {
		t.Setenv(EnvMaxStepBytes, tc.env)
		got, err := MaxStepBytesFromEnv()
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%q: %d, %v", tc.env, got, err)
		}
	}
}

type warnRecorder struct {
	recorder
	warnings []string
}

func (w *warnRecorder) Warn(line int, msg string) { w.warnings = append(w.warnings, msg) }

// TestWarningsPassThrough: build warnings reach the display through the
// whole chain, masked.
func TestWarningsPassThrough(t *testing.T) {
	t.Parallel()
	a, b := &warnRecorder{}, &warnRecorder{}
	r := NewRedactor(Tee{NewClipper(a, 10), b}, [][]byte{[]byte("s3cr3t")})
	r.Warn(3, "careful with s3cr3t")
	for _, w := range []*warnRecorder{a, b} {
		if len(w.warnings) != 1 || w.warnings[0] != "careful with ****" {
			t.Errorf("warnings %q", w.warnings)
		}
	}
}

// TestRedactorKeepsLines: a secret read from a file usually ends in a
// newline; masking it must never take that newline (or a carriage
// return) with it, so the lines around a masked one stay lines.
func TestRedactorKeepsLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		secrets []string
		chunks  []string
		want    string
	}{
		{"secret ending in a newline, then more lines", []string{"s3cr3t-value\n"},
			[]string{"s3cr3t-value\nmid\nend\n"}, "****\nmid\nend\n"},
		{"two masked lines in a row", []string{"s3cr3t-value\n"},
			[]string{"s3cr3t-value\ns3cr3t-value\n"}, "****\n****\n"},
		{"CRLF secret, CRLF output", []string{"s3cr3t-value\r\n"},
			[]string{"s3cr3t-value\r\ns3cr3t-value\r\nmid\r\n"}, "****\r\n****\r\nmid\r\n"},
		{"across chunk boundaries", []string{"s3cr3t-value\n"},
			[]string{"s3cr", "3t-value", "\ns3cr3t-", "value\nm", "id\n"}, "****\n****\nmid\n"},
		{"newline in its own chunk", []string{"s3cr3t-value\n"},
			[]string{"s3cr3t-value", "\n", "s3cr3t-value", "\n"}, "****\n****\n"},
		{"multi-line secret printed whole", []string{"first-line\nsecond-line\n"},
			[]string{"first-line\nsecond-line\nafter\n"}, "****\n****\nafter\n"},
		{"base64 of the value with its newline", []string{"s3cr3t-value\n"},
			[]string{base64.StdEncoding.EncodeToString([]byte("s3cr3t-value\n")) + "\nnext\n"}, "****\nnext\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			var secrets [][]byte
			for _, s := range tc.secrets {
				secrets = append(secrets, []byte(s))
			}
			r := NewRedactor(rec, secrets)
			feed(r, stepA, tc.chunks...)
			r.Status(solver.Status{Digest: stepA, Completed: time.Now()})
			if got := rec.text(stepA); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
