package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// DefaultRetry is the backoff of retried requests and uploads: on 408, 429,
// 5xx and connection failures, five tries waiting 0.5s, 1s, 2s and 4s
// (with 10% jitter) in between.
var DefaultRetry = remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 5}

// retryStatusCodes are the HTTP statuses retried (with DefaultRetry or
// Options.Retry).
var retryStatusCodes = []int{
	http.StatusRequestTimeout,
	http.StatusTooManyRequests,
	http.StatusInternalServerError,
	http.StatusBadGateway,
	http.StatusServiceUnavailable,
	http.StatusGatewayTimeout,
}

// baseTransport returns the transport under the guard: o.Transport when
// it is not an *http.Transport (tests), else a clone of it or of
// remote.DefaultTransport with o.Timeouts (connect, TLS handshake, stalled
// connections) and trusting the system roots plus o.CAFiles.
func baseTransport(o Options, log *stallLog) (http.RoundTripper, error) {
	var t *http.Transport
	switch b := o.Transport.(type) {
	case nil:
		t = remote.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		t = b.Clone()
	default:
		if len(o.CAFiles) > 0 {
			return nil, errors.New("registry client: CA files need an *http.Transport")
		}
		return o.Transport, nil
	}
	to := o.Timeouts.withDefaults()
	t.DialContext = stallDialer(to, log)
	t.TLSHandshakeTimeout = to.TLS
	if len(o.CAFiles) == 0 {
		return t, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, f := range o.CAFiles {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading CA certificates: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificates in it", f)
		}
	}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	t.TLSClientConfig.RootCAs = pool
	return t, nil
}

// originalHost returns the host of the first request of the redirect chain
// req belongs to.
func originalHost(req *http.Request) string {
	for req.Response != nil && req.Response.Request != nil {
		req = req.Response.Request
	}
	return req.URL.Host
}

// stripCrossHostAuth returns req without its Authorization header when it
// follows a redirect to another host:port than the request that started
// the chain. net/http keeps the header on redirects to the same host name
// with another port, and go-containerregistry sets the header on the
// original request, so without this a registry on 127.0.0.1:5000 that
// redirects to 127.0.0.1:9000 (or a storage host) would hand that server
// the credentials.
func stripCrossHostAuth(req *http.Request) *http.Request {
	if req.Response == nil || req.Header.Get("Authorization") == "" {
		return req
	}
	if originalHost(req) == req.URL.Host {
		return req
	}
	req = req.Clone(req.Context())
	req.Header.Del("Authorization")
	return req
}

// retryable decides which failed requests and uploads are tried again:
// registry answers 408, 429 and 5xx (also when wrapped, and for HEAD
// requests, which have no body to say "temporary"), broken or reset
// connections and timeouts; never a canceled context, an answer such as 401
// or 404, or a refused connection (nothing listens there: retrying for 15 s
// only delays the fallback to the cache or the error, as containerd knows).
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrInsecure) {
		return false
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		return slices.Contains(retryStatusCodes, terr.StatusCode) || terr.Temporary()
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
