package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Timeouts bound every wait on a registry, so that one that accepts a
// connection and never answers, stalls mid-blob or trickles a byte a
// second fails the pull or push instead of holding it forever.
type Timeouts struct {
	// Connect bounds establishing a TCP connection.
	Connect time.Duration
	// TLS bounds the TLS handshake.
	TLS time.Duration
	// Stall is the progress window of a connection: a connection that
	// moves fewer than MinBytes (either way) within Stall is stalled,
	// whether it waits for response headers, a body or to send one. A
	// stalled request is retried once, then the operation fails.
	Stall time.Duration
	// MinBytes is the least traffic per Stall window of a live connection.
	MinBytes int64
}

// DefaultTimeouts: a registry that hangs fails an operation within about
// a minute (two stalled windows).
var DefaultTimeouts = Timeouts{Connect: 30 * time.Second, TLS: 10 * time.Second, Stall: 30 * time.Second, MinBytes: 1024}

// Environment variables that change DefaultTimeouts (Go durations such
// as "45s"), read by TimeoutsFromEnv.
const (
	EnvStallTimeout   = "BUILDER_REGISTRY_TIMEOUT"
	EnvConnectTimeout = "BUILDER_REGISTRY_CONNECT_TIMEOUT"
)

// TimeoutsFromEnv returns DefaultTimeouts changed by EnvStallTimeout and
// EnvConnectTimeout.
func TimeoutsFromEnv() (Timeouts, error) {
	t := DefaultTimeouts
	for _, v := range []struct {
		env string
		dst *time.Duration
	}{{EnvStallTimeout, &t.Stall}, {EnvConnectTimeout, &t.Connect}} {
		s := os.Getenv(v.env)
		if s == "" {
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return t, fmt.Errorf("%s=%q: not a positive duration (e.g. 30s)", v.env, s)
		}
		*v.dst = d
	}
	return t, nil
}

// withDefaults fills zero fields from DefaultTimeouts.
func (t Timeouts) withDefaults() Timeouts {
	if t.Connect <= 0 {
		t.Connect = DefaultTimeouts.Connect
	}
	if t.TLS <= 0 {
		t.TLS = DefaultTimeouts.TLS
	}
	if t.Stall <= 0 {
		t.Stall = DefaultTimeouts.Stall
	}
	if t.MinBytes <= 0 {
		t.MinBytes = DefaultTimeouts.MinBytes
	}
	return t
}

// StallError is the error of a read or write on a stalled connection.
type StallError struct {
	Addr   string
	Window time.Duration
	Bytes  int64
}

func (e *StallError) Error() string {
	return fmt.Sprintf("connection to %s stalled: %d bytes in %s", e.Addr, e.Bytes, e.Window)
}

// Timeout makes a StallError a net.Error timeout.
func (e *StallError) Timeout() bool { return true }

// Temporary is part of net.Error.
func (e *StallError) Temporary() bool { return true }

// isStall reports whether err is a stall or another network timeout
// (connect, TLS handshake): the errors retried only once.
func isStall(err error) bool {
	var se *StallError
	if errors.As(err, &se) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, context.DeadlineExceeded)
}

// stallLog records the last stall of each address. net/http can hide a
// stall error behind its own ("malformed HTTP response" when the status
// line was cut, "unexpected EOF"), so the retry levels ask the log
// whether an error came with a stall.
type stallLog struct {
	mu   sync.Mutex
	last map[string]stallEntry
}

type stallEntry struct {
	at  time.Time
	err *StallError
}

func (l *stallLog) record(e *StallError) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]stallEntry{}
	}
	l.last[e.Addr] = stallEntry{time.Now(), e}
}

// recent returns the stall of addr ("" for any address) at or after
// since, or nil.
func (l *stallLog) recent(addr string, since time.Time) *StallError {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for a, e := range l.last {
		if (addr == "" || a == addr) && !e.at.Before(since) {
			return e.err
		}
	}
	return nil
}

// asStall returns err as a stall when it is one or when addr stalled
// since the operation began.
func (l *stallLog) asStall(err error, addr string, since time.Time) error {
	if err == nil || isStall(err) {
		return err
	}
	if se := l.recent(addr, since); se != nil {
		return fmt.Errorf("%w (%v)", se, err)
	}
	return err
}

// stallDialer dials connections that fail once stalled, recording their
// stalls in log.
func stallDialer(t Timeouts, log *stallLog) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: t.Connect, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &stallConn{Conn: c, addr: addr, window: t.Stall, min: t.MinBytes, start: time.Now(), log: log}, nil
	}
}

// stallConn fails reads and writes once a window of its traffic is below
// the minimum. Each read or write waits at most until the end of the
// current window; a window with enough traffic starts the next one.
type stallConn struct {
	net.Conn
	addr   string
	window time.Duration
	min    int64
	log    *stallLog

	mu    sync.Mutex
	start time.Time
	bytes int64
}

func (c *stallConn) Read(p []byte) (int, error) {
	for {
		c.arm()
		n, err := c.Conn.Read(p)
		c.add(n)
		if !isDeadline(err) {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
		if serr := c.renew(); serr != nil {
			return 0, serr
		}
	}
}

func (c *stallConn) Write(p []byte) (int, error) {
	off := 0
	for {
		c.arm()
		n, err := c.Conn.Write(p[off:])
		c.add(n)
		off += n
		if !isDeadline(err) {
			return off, err
		}
		if serr := c.renew(); serr != nil {
			return off, serr
		}
	}
}

// arm sets the deadline to the end of the current window.
func (c *stallConn) arm() {
	c.mu.Lock()
	end := c.start.Add(c.window)
	c.mu.Unlock()
	_ = c.Conn.SetDeadline(end)
}

func (c *stallConn) add(n int) {
	if n > 0 {
		c.mu.Lock()
		c.bytes += int64(n)
		c.mu.Unlock()
	}
}

// renew starts the next window after one that ended, or returns the
// stall error when its traffic was below the minimum.
func (c *stallConn) renew() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if now.Before(c.start.Add(c.window)) {
		return nil // another reader or writer renewed it
	}
	if c.bytes < c.min {
		e := &StallError{Addr: c.addr, Window: c.window, Bytes: c.bytes}
		if c.log != nil {
			c.log.record(e)
		}
		return e
	}
	c.start, c.bytes = now, 0
	return nil
}

func isDeadline(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// A caller's own deadlines would fight the window: they are ignored; the
// window bounds every wait.
func (c *stallConn) SetDeadline(time.Time) error      { return nil }
func (c *stallConn) SetReadDeadline(time.Time) error  { return nil }
func (c *stallConn) SetWriteDeadline(time.Time) error { return nil }

// stallBody fails a response body that moves fewer than min bytes in a
// window. The connection's own window cannot see one stalled stream of an
// HTTP/2 connection that others keep busy; this sees each body.
type stallBody struct {
	rc     io.ReadCloser
	addr   string
	window time.Duration
	min    int64
	timer  *time.Timer

	mu      sync.Mutex
	bytes   int64
	stalled *StallError
}

// watchBody returns rc watched for stalls.
func watchBody(rc io.ReadCloser, addr string, t Timeouts) io.ReadCloser {
	b := &stallBody{rc: rc, addr: addr, window: t.Stall, min: t.MinBytes}
	b.timer = time.AfterFunc(t.Stall, b.tick)
	return b
}

// tick ends a window: closes a stalled body (unblocking its reader) or
// starts the next window.
func (b *stallBody) tick() {
	b.mu.Lock()
	if b.bytes < b.min {
		b.stalled = &StallError{Addr: b.addr, Window: b.window, Bytes: b.bytes}
		b.mu.Unlock()
		b.rc.Close()
		return
	}
	b.bytes = 0
	b.mu.Unlock()
	b.timer.Reset(b.window)
}

func (b *stallBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	b.bytes += int64(n)
	stalled := b.stalled
	b.mu.Unlock()
	if stalled != nil && err != nil {
		return n, stalled
	}
	if err == io.EOF {
		b.timer.Stop()
	}
	return n, err
}

func (b *stallBody) Close() error {
	b.timer.Stop()
	return b.rc.Close()
}
