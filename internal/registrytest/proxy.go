package registrytest

import (
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Fault is what a FaultProxy does to one request.
type Fault int

const (
	// Pass forwards the request.
	Pass Fault = iota
	// Unavailable answers 503 without forwarding.
	Unavailable
	// TooMany answers 429 without forwarding.
	TooMany
	// Drop closes the connection without an answer.
	Drop
	// CutBody forwards the request and cuts the connection half-way
	// through the response body (responses without a body pass whole).
	CutBody
)

// FaultProxy is a reverse proxy on loopback in front of a registry that
// injects faults chosen by a deterministic policy, and counts requests.
type FaultProxy struct {
	// Host is the proxy's host:port.
	Host string

	mu     sync.Mutex
	n      int
	policy func(n int, r *http.Request) Fault
	counts map[string]int
	faults int
	cuts   int
}

// NewFaultProxy starts a proxy to the registry at target (host:port, plain
// HTTP). policy is called for every request with its sequence number
// (from 0) and decides its fault; nil passes everything. The proxy stops
// when the test ends.
func NewFaultProxy(t testing.TB, target string, policy func(n int, r *http.Request) Fault) *FaultProxy {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: target}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	p := &FaultProxy{policy: policy, counts: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := p.decide(r)
		switch f {
		case Unavailable, TooMany:
			io.Copy(io.Discard, r.Body)
			code := http.StatusServiceUnavailable
			if f == TooMany {
				code = http.StatusTooManyRequests
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			io.WriteString(w, `{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}`)
			return
		case Drop:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					if tc, ok := conn.(*net.TCPConn); ok {
						tc.SetLinger(0) // RST, a connection reset
					}
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		p.count(r)
		if f == CutBody {
			w = &cutWriter{ResponseWriter: w, p: p}
		}
		// The Host header stays the proxy's, so the registry's Location
		// headers point at the proxy; the rewriter catches registries that
		// use their own address.
		rp.ServeHTTP(&locationRewriter{ResponseWriter: w, from: target, to: p.Host}, r)
	}))
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	t.Cleanup(srv.Close)
	return p
}

func (p *FaultProxy) decide(r *http.Request) Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.n
	p.n++
	if p.policy == nil {
		return Pass
	}
	f := p.policy(n, r)
	if f != Pass {
		p.faults++
	}
	return f
}

// count records a forwarded request as "METHOD kind" with kind blobs,
// uploads, manifests or other.
func (p *FaultProxy) count(r *http.Request) {
	kind := "other"
	switch {
	case strings.Contains(r.URL.Path, "/blobs/uploads"):
		kind = "uploads"
	case strings.Contains(r.URL.Path, "/blobs/"):
		kind = "blobs"
	case strings.Contains(r.URL.Path, "/manifests/"):
		kind = "manifests"
	}
	p.mu.Lock()
	p.counts[r.Method+" "+kind]++
	p.mu.Unlock()
}

// Count returns how many forwarded requests were "METHOD kind" (see count).
func (p *FaultProxy) Count(what string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[what]
}

// Faults returns how many faults were injected.
func (p *FaultProxy) Faults() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults
}

// Cuts returns how many response bodies CutBody cut off.
func (p *FaultProxy) Cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

// Reset clears the counters and the sequence number.
func (p *FaultProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n, p.faults, p.cuts = 0, 0, 0
	p.counts = map[string]int{}
}

// SetPolicy replaces the fault policy.
func (p *FaultProxy) SetPolicy(policy func(n int, r *http.Request) Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.policy = policy
}

// EveryNth returns a policy that injects f into every nth request (n >= 2),
// at most max times in all: bounded and deterministic.
func EveryNth(nth, max int, f Fault) func(int, *http.Request) Fault {
	var mu sync.Mutex
	done := 0
	return func(n int, _ *http.Request) Fault {
		mu.Lock()
		defer mu.Unlock()
		if n%nth == nth-1 && done < max {
			done++
			return f
		}
		return Pass
	}
}

// Random returns a policy that injects one of faults, chosen at random,
// into a request with probability 1/oneIn; the sequence is the same for
// a given seed.
func Random(seed uint64, oneIn int, faults ...Fault) func(int, *http.Request) Fault {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(int, *http.Request) Fault {
		mu.Lock()
		defer mu.Unlock()
		if rng.IntN(oneIn) != 0 {
			return Pass
		}
		return faults[rng.IntN(len(faults))]
	}
}

// cutWriter passes the first half of a response body (by its
// Content-Length, or 1 KiB without one) and then aborts the connection.
type cutWriter struct {
	http.ResponseWriter
	p       *FaultProxy
	limit   int64
	written int64
	started bool
}

func (c *cutWriter) WriteHeader(code int) {
	if !c.started {
		c.started = true
		c.limit = 1 << 10
		if n, err := strconv.ParseInt(c.Header().Get("Content-Length"), 10, 64); err == nil {
			c.limit = n / 2
		}
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if !c.started {
		c.WriteHeader(http.StatusOK)
	}
	if c.written+int64(len(b)) <= c.limit {
		n, err := c.ResponseWriter.Write(b)
		c.written += int64(n)
		return n, err
	}
	n, _ := c.ResponseWriter.Write(b[:c.limit-c.written])
	c.written += int64(n)
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	c.p.mu.Lock()
	c.p.cuts++
	c.p.mu.Unlock()
	// net/http closes the connection without finishing the response.
	panic(http.ErrAbortHandler)
}

func (c *cutWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// locationRewriter points Location headers at the proxy.
type locationRewriter struct {
	http.ResponseWriter
	from, to string
}

func (l *locationRewriter) WriteHeader(code int) {
	if loc := l.Header().Get("Location"); loc != "" {
		l.Header().Set("Location", strings.Replace(loc, "://"+l.from+"/", "://"+l.to+"/", 1))
	}
	l.ResponseWriter.WriteHeader(code)
}
