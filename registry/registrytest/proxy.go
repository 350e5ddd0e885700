package registrytest

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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
	closed bool
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

// Reset clears the counters and the sequence number.
func (p *FaultProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n, p.faults = 0, 0
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
