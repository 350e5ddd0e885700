package registry

import (
	"io"
	"net/http"
	"sync/atomic"
)

// traffic counts the bytes a client's requests sent and its responses
// brought, for the build report.
type traffic struct {
	received, sent atomic.Int64
}

// countingTransport counts request and response bodies as they stream.
type countingTransport struct {
	base http.RoundTripper
	t    *traffic
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = &countingBody{rc: req.Body, n: &c.t.sent}
	}
	resp, err := c.base.RoundTrip(req)
	if err == nil && resp.Body != nil {
		resp.Body = &countingBody{rc: resp.Body, n: &c.t.received}
	}
	return resp, err
}

type countingBody struct {
	rc io.ReadCloser
	n  *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

// Traffic returns the bytes the client received (pulls, mostly layers)
// and sent (pushes) over HTTP so far, bodies only.
func (c *Client) Traffic() (received, sent int64) {
	return c.traffic.received.Load(), c.traffic.sent.Load()
}
