package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/solver"
	digest "github.com/opencontainers/go-digest"
)

// httpOp downloads one file (ADD <url>). Downloads are streamed into the
// blob store (under --root), never held in memory; the output is a
// snapshot holding the file.
//
// Cache key, as BuildKit's HTTP source: with a pinned checksum the op's
// digest alone (no request at all); otherwise the content digest and the
// Last-Modified time. The content digest of a URL is remembered with the
// response's ETag, so a later build revalidates with a HEAD request
// carrying If-None-Match and downloads only when the server's answer
// changed; a server without ETags is downloaded and digested on every
// build, and an unchanged body is still a hit.
type httpOp struct {
	w  *Worker
	v  *llb.Vertex
	op llb.HTTPOp

	mu       sync.Mutex
	resolved *httpEntry // set by CacheMap when the content is known
}

// httpEntry is what is known of one response of a URL.
type httpEntry struct {
	ETag         string        `json:"etag,omitempty"`
	Digest       digest.Digest `json:"digest"`
	LastModified string        `json:"lastModified,omitempty"`
}

// httpURLMeta is the stored file of a URL's known responses.
type httpURLMeta struct {
	URL     string      `json:"url"`
	Entries []httpEntry `json:"entries"`
}

// maxHTTPEntries bounds the ETags remembered per URL.
const maxHTTPEntries = 8

// httpClient is the client of HTTP sources: the default transport, so
// HTTP_PROXY, HTTPS_PROXY and NO_PROXY apply.
var httpClient = &http.Client{Transport: http.DefaultTransport}

func (o *httpOp) CacheMap(ctx context.Context) (*solver.CacheMap, error) {
	if o.op.Checksum != "" {
		if _, err := digest.Parse(o.op.Checksum); err != nil {
			return nil, fmt.Errorf("%s: checksum %q: %w", redactURL(o.op.URL), o.op.Checksum, err)
		}
		return &solver.CacheMap{Digest: o.v.Digest()}, nil
	}
	e, err := o.resolve(ctx)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	o.resolved = e
	o.mu.Unlock()
	return &solver.CacheMap{Digest: digest.FromString(string(o.v.Digest()) + "\n" + string(e.Digest) + "\n" + e.LastModified)}, nil
}

// resolve learns the digest of the URL's current content: from a stored
// ETag that the server confirms, or by downloading it into the blob store.
func (o *httpOp) resolve(ctx context.Context) (*httpEntry, error) {
	meta, err := o.w.loadHTTPMeta(o.op.URL)
	if err != nil {
		return nil, err
	}
	byETag := map[string]httpEntry{}
	var etags []string
	for _, e := range meta.Entries {
		if e.ETag == "" || e.Digest == "" {
			continue
		}
		if _, ok := byETag[e.ETag]; !ok {
			etags = append(etags, e.ETag)
		}
		byETag[e.ETag] = e
	}
	onlyETag := ""
	if len(etags) == 1 {
		onlyETag = etags[0]
	}
	match := func(resp *http.Response) (*httpEntry, bool) {
		tag := etagValue(resp.Header.Get("ETag"))
		if tag == "" && onlyETag != "" && resp.StatusCode == http.StatusNotModified {
			tag = onlyETag
		}
		e, ok := byETag[tag]
		return &e, ok
	}
	inm := ""
	for i, t := range etags {
		if i > 0 {
			inm += ", "
		}
		inm += quoteETag(t)
	}

	// Some servers answer If-None-Match wrongly: first a HEAD request with a
	// comparison of the ETag by hand.
	if len(etags) > 0 {
		req, err := o.request(ctx, http.MethodHead)
		if err != nil {
			return nil, err
		}
		req.Header.Set("If-None-Match", inm)
		// GET asks for gzip implicitly; the ETag may depend on it.
		req.Header.Set("Accept-Encoding", "gzip")
		if resp, err := httpClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotModified {
				if e, ok := match(resp); ok {
					return e, nil
				}
			}
		}
	}

	req, err := o.request(ctx, http.MethodGet)
	if err != nil {
		return nil, err
	}
	if inm != "" {
		req.Header.Set("If-None-Match", inm)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", redactURL(o.op.URL), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		if e, ok := match(resp); ok {
			return e, nil
		}
		return nil, fmt.Errorf("fetching %s: not modified, but the ETag %q is unknown", redactURL(o.op.URL), resp.Header.Get("ETag"))
	}
	if err := checkStatus(o.op.URL, resp); err != nil {
		return nil, err
	}
	d, err := o.download(ctx, resp, "")
	if err != nil {
		return nil, err
	}
	e := httpEntry{ETag: etagValue(resp.Header.Get("ETag")), Digest: d, LastModified: resp.Header.Get("Last-Modified")}
	if e.ETag != "" {
		if err := o.w.rememberHTTP(o.op.URL, e); err != nil {
			return nil, err
		}
	}
	return &e, nil
}

func (o *httpOp) request(ctx context.Context, method string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, o.op.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("http source %s: %w", redactURL(o.op.URL), err)
	}
	return req, nil
}

func checkStatus(u string, resp *http.Response) error {
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("fetching %s: invalid response status %s", redactURL(u), resp.Status)
	}
	return nil
}

// download streams resp's body into the blob store and returns its
// sha256 digest. With a checksum of any algorithm, a body with another
// digest is an error naming both.
func (o *httpOp) download(ctx context.Context, resp *http.Response, checksum digest.Digest) (digest.Digest, error) {
	bw, err := o.w.opt.Blobs.Writer()
	if err != nil {
		return "", fmt.Errorf("fetching %s: %w", redactURL(o.op.URL), err)
	}
	defer bw.Close()
	var w io.Writer = bw
	var extra digest.Digester
	if checksum != "" && checksum.Algorithm() != digest.Canonical {
		extra = checksum.Algorithm().Digester()
		w = io.MultiWriter(bw, extra.Hash())
	}
	if _, err := io.Copy(w, httpCtxReader{ctx, resp.Body}); err != nil {
		return "", fmt.Errorf("fetching %s: %w", redactURL(o.op.URL), err)
	}
	if checksum != "" {
		got := bw.Digest()
		if extra != nil {
			got = extra.Digest()
		}
		if got != checksum {
			return "", fmt.Errorf("digest mismatch for %s: %s (expected: %s)", redactURL(o.op.URL), got, checksum)
		}
	}
	d, err := bw.Commit("")
	if err != nil {
		return "", fmt.Errorf("fetching %s: storing the download: %w", redactURL(o.op.URL), err)
	}
	return d, nil
}

// fetch downloads the URL and checks that its content is want (the
// content digest CacheMap saw, or the pinned checksum).
func (o *httpOp) fetch(ctx context.Context, checksum, want digest.Digest) (*httpEntry, error) {
	req, err := o.request(ctx, http.MethodGet)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", redactURL(o.op.URL), err)
	}
	defer resp.Body.Close()
	if err := checkStatus(o.op.URL, resp); err != nil {
		return nil, err
	}
	d, err := o.download(ctx, resp, checksum)
	if err != nil {
		return nil, err
	}
	if want != "" && d != want {
		return nil, fmt.Errorf("fetching %s: the content changed during the build: %s, expected %s", redactURL(o.op.URL), d, want)
	}
	e := &httpEntry{ETag: etagValue(resp.Header.Get("ETag")), Digest: d, LastModified: resp.Header.Get("Last-Modified")}
	if e.ETag != "" && checksum == "" {
		if err := o.w.rememberHTTP(o.op.URL, *e); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (o *httpOp) Exec(ctx context.Context, _ []solver.Result) (solver.Result, error) {
	o.mu.Lock()
	e := o.resolved
	o.mu.Unlock()
	var err error
	switch {
	case o.op.Checksum != "":
		var sum digest.Digest
		sum, err = digest.Parse(o.op.Checksum)
		if err != nil {
			return nil, fmt.Errorf("%s: checksum %q: %w", redactURL(o.op.URL), o.op.Checksum, err)
		}
		e, err = o.fetch(ctx, sum, "")
	case e == nil:
		e, err = o.fetch(ctx, "", "")
	default:
		if _, serr := o.w.opt.Blobs.Stat(e.Digest); serr != nil {
			// Known by its ETag but not downloaded (or pruned since): the
			// key was made with the stored Last-Modified, so keep it.
			lm := e.LastModified
			e, err = o.fetch(ctx, "", e.Digest)
			if err == nil {
				e.LastModified = lm
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return o.w.httpSnapshot(ctx, o.op, e)
}

// httpSnapshot commits a snapshot holding the downloaded blob as the op's
// single file.
func (w *Worker) httpSnapshot(ctx context.Context, op llb.HTTPOp, e *httpEntry) (solver.Result, error) {
	name := safeFileName(op.Filename)
	perm := os.FileMode(0o600)
	if op.Perm != 0 {
		perm = os.FileMode(op.Perm) & os.ModePerm
	}
	mtime := time.Unix(0, 0)
	if e.LastModified != "" {
		if t, err := http.ParseTime(e.LastModified); err == nil {
			mtime = t
		}
	}
	blob := w.opt.Blobs.Path(e.Digest)

	st, err := w.newStep(ctx, "http-", "")
	if err != nil {
		return nil, err
	}
	defer st.discard(ctx)
	mounts := st.mounts
	err = snapshot.WithMounts(ctx, [][]snapshot.Mount{mounts}, func(roots []string) error {
		src, err := os.Open(blob)
		if err != nil {
			return err
		}
		defer src.Close()
		target := filepath.Join(roots[0], name)
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, httpCtxReader{ctx, src}); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Chmod(target, perm); err != nil {
			return err
		}
		if op.UID != 0 || op.GID != 0 {
			if err := os.Lchown(target, op.UID, op.GID); err != nil {
				return err
			}
		}
		return os.Chtimes(target, mtime, mtime)
	})
	if err != nil {
		return nil, fmt.Errorf("http source %s: writing %s: %w", redactURL(op.URL), name, err)
	}
	return st.commit(ctx, &record{})
}

// httpMetaPath is the file of a URL's known responses, under StateDir.
func (w *Worker) httpMetaPath(u string) string {
	sum := sha256.Sum256([]byte(u))
	return filepath.Join(w.stateDir(), "http", hex.EncodeToString(sum[:])+".json")
}

func (w *Worker) stateDir() string {
	if w.opt.StateDir != "" {
		return w.opt.StateDir
	}
	return filepath.Join(os.TempDir(), "builder-state")
}

func (w *Worker) loadHTTPMeta(u string) (*httpURLMeta, error) {
	p := w.httpMetaPath(u)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &httpURLMeta{URL: u}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("http source %s: reading %s: %w", redactURL(u), p, err)
	}
	var m httpURLMeta
	if err := json.Unmarshal(b, &m); err != nil || m.URL != u {
		// A damaged or colliding file only costs a download.
		return &httpURLMeta{URL: u}, nil
	}
	return &m, nil
}

// rememberHTTP records e as the newest known response of URL u.
func (w *Worker) rememberHTTP(u string, e httpEntry) error {
	unlock := w.layerMu.lock("http-meta " + u)
	defer unlock()
	m, err := w.loadHTTPMeta(u)
	if err != nil {
		return err
	}
	entries := []httpEntry{e}
	for _, x := range m.Entries {
		if x.ETag != e.ETag && len(entries) < maxHTTPEntries {
			entries = append(entries, x)
		}
	}
	m.Entries = entries
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	p := w.httpMetaPath(u)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("http source %s: %w", redactURL(u), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-")
	if err != nil {
		return fmt.Errorf("http source %s: %w", redactURL(u), err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("http source %s: writing %s: %w", redactURL(u), tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("http source %s: writing %s: %w", redactURL(u), tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("http source %s: %w", redactURL(u), err)
	}
	return nil
}

// etagValue strips the weak prefix and quotes of an ETag header.
func etagValue(v string) string {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "W/")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v
}

func quoteETag(v string) string { return `"` + v + `"` }

// safeFileName makes s a single path element, as BuildKit does ("download"
// for an empty, dot or control-character name).
func safeFileName(s string) string {
	name := filepath.Base(filepath.FromSlash(strings.TrimSpace(s)))
	if name == "" || name == "." || name == ".." || name == "/" {
		return "download"
	}
	for _, r := range name {
		if r == 0 || unicode.IsControl(r) {
			return "download"
		}
	}
	return name
}

// redactURL hides a password in u for messages.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	if _, ok := p.User.Password(); ok {
		p.User = url.UserPassword(p.User.Username(), "xxxxx")
	}
	return p.String()
}

// httpCtxReader stops a copy when ctx is done.
type httpCtxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c httpCtxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
