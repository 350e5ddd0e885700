package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Retries happen at three levels, each for what the one below cannot
// redo:
//
//   - retryTransport, under go-containerregistry, retries every request it
//     can send again (no body, or one it can rebuild: GetBody), GET, HEAD,
//     upload start, commit and manifest PUT alike, on 408, 429, 5xx and
//     broken connections with the client's backoff; a stall (StallError,
//     a connect or handshake timeout) once.
//   - A push retries each blob upload whole (existence check, upload
//     start, the streamed PATCH that cannot be sent again, commit) with
//     pushPredicate.
//   - retryOp runs a pull operation, a request and the read of its body,
//     again when the body breaks off or stalls.
//
// A stall is retried once overall: an error that already was is an
// *OpStalledError, which no level retries, so a registry that hangs fails
// an operation within about two stall windows.

// OpStalledError is a registry operation that stalled twice.
type OpStalledError struct {
	Registry string
	// Op is what was being done, e.g. "GET /v2/x/blobs/sha256:..." or
	// "downloading blob sha256:... of x".
	Op  string
	Err error
}

func (e *OpStalledError) Error() string {
	return fmt.Sprintf("registry %s stalled while %s (tried twice): %v", e.Registry, e.Op, e.Err)
}

func (e *OpStalledError) Unwrap() error { return e.Err }

func isOpStalled(err error) bool {
	var e *OpStalledError
	return errors.As(err, &e)
}

// neverRetry is go-containerregistry's per-request predicate for pulls:
// retryTransport under it already retried what can be.
func neverRetry(error) bool { return false }

// pushPredicate returns the retry predicate of the blob uploads and the
// manifest of one push: retryable errors, a stall once for the whole
// push.
func pushPredicate() func(error) bool {
	var stalls atomic.Int32
	return func(err error) bool {
		switch {
		case isOpStalled(err):
			return false
		case isStall(err):
			return stalls.Add(1) <= 1
		}
		return retryable(err)
	}
}

// retryTransport retries the requests it can send again.
type retryTransport struct {
	base     http.RoundTripper
	backoff  remote.Backoff
	stalls   *stallLog
	timeouts Timeouts
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	delay := t.backoff.Duration
	stalls := 0
	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(req.Context())
			r.Body = body
		}
		began := time.Now()
		resp, err := t.base.RoundTrip(r)
		err = t.stalls.asStall(err, dialAddr(req.URL), began)
		again := false
		switch {
		case err != nil && isStall(err):
			stalls++
			if stalls > 1 {
				return nil, &OpStalledError{Registry: req.URL.Host, Op: req.Method + " " + req.URL.Path, Err: err}
			}
			again = true
		case err != nil:
			again = retryable(err)
		case slices.Contains(retryStatusCodes, resp.StatusCode):
			again = true
		}
		if !again || !replayable || attempt >= t.backoff.Steps || req.Context().Err() != nil {
			if resp != nil && resp.Body != nil && t.timeouts.Stall > 0 {
				resp.Body = watchBody(resp.Body, dialAddr(req.URL), t.timeouts)
			}
			return resp, err
		}
		wait := jittered(delay, t.backoff.Jitter)
		if resp != nil {
			if ra := retryAfter(resp); ra > wait {
				wait = ra
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := sleep(req.Context(), wait); err != nil {
			return nil, err
		}
		if t.backoff.Factor > 0 {
			delay = time.Duration(float64(delay) * t.backoff.Factor)
		}
	}
}

// dialAddr is the host:port net/http dials for u.
func dialAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "443"
	if u.Scheme == "http" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// maxRetryAfter bounds how long a Retry-After header makes us wait.
const maxRetryAfter = 30 * time.Second

// retryAfter is the wait a 429 or 503 asks for (seconds form), at most
// maxRetryAfter.
func retryAfter(resp *http.Response) time.Duration {
	s := resp.Header.Get("Retry-After")
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, maxRetryAfter)
}

func jittered(d time.Duration, jitter float64) time.Duration {
	if jitter > 0 {
		d += time.Duration(rand.Float64() * jitter * float64(d))
	}
	return d
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// brokenBody reports whether err is a response body cut short: a reset or
// closed connection, or an unexpected end of data.
func brokenBody(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// retryOp runs fn, one pull operation named by what against registry
// host, until it succeeds: again after a broken body (up to the client's
// backoff steps, waiting as it says), once more after a stall.
func (c *Client) retryOp(ctx context.Context, host, what string, fn func() error) error {
	delay := c.backoff.Duration
	stalls := 0
	for attempt := 1; ; attempt++ {
		began := time.Now()
		err := c.stalls.asStall(fn(), "", began)
		if err == nil || ctx.Err() != nil || isOpStalled(err) {
			return err
		}
		switch {
		case isStall(err):
			stalls++
			if stalls > 1 {
				return &OpStalledError{Registry: host, Op: what, Err: err}
			}
		case !brokenBody(err) || attempt >= c.backoff.Steps:
			return err
		}
		if err := sleep(ctx, jittered(delay, c.backoff.Jitter)); err != nil {
			return err
		}
		if c.backoff.Factor > 0 {
			delay = time.Duration(float64(delay) * c.backoff.Factor)
		}
	}
}

// sizedReader turns an early EOF of a body of known size into
// io.ErrUnexpectedEOF, so that a cut-off chunked response is retried
// like a cut-off one with a Content-Length.
type sizedReader struct {
	r    io.Reader
	left int64
}

func (s *sizedReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.left -= int64(n)
	if err == io.EOF && s.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
