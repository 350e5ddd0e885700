package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/digestutil"
	"github.com/builderdev/builder/llb"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// MaxManifestSize is the largest manifest or index the client accepts.
const MaxManifestSize = 4 << 20

// MaxConfigSize is the largest image config the client accepts.
const MaxConfigSize = 8 << 20

// DefaultPullJobs is the number of layers Pull downloads at once.
const DefaultPullJobs = 4

// ErrManifestTooLarge is returned (wrapped) for a manifest over
// MaxManifestSize.
var ErrManifestTooLarge = errors.New("manifest too large")

// ErrInsecure is returned (wrapped) when a registry would be spoken to over
// plain HTTP without being allowed to.
var ErrInsecure = errors.New("plain HTTP not allowed")

// Options configure a Client.
type Options struct {
	// Blobs stores manifests, configs and layers. Required to resolve,
	// pull and push; a client without one can only check a login.
	Blobs *cache.BlobStore
	// Keychain finds credentials; nil means authn.DefaultKeychain
	// (~/.docker/config.json, DOCKER_CONFIG, credential helpers).
	Keychain authn.Keychain
	// Insecure lists extra host[:port]s spoken to over plain HTTP.
	// localhost, 127.0.0.0/8 and ::1 always are, like Docker.
	Insecure []string
	// Transport is the HTTP transport; nil means remote.DefaultTransport.
	Transport http.RoundTripper
	// Jobs bounds the parallel layer downloads of one Pull and the
	// parallel blob uploads of one Push (0 means DefaultPullJobs).
	Jobs int
	// CAFiles are PEM files of certificate authorities trusted besides
	// the system pool (e.g. a private registry's CA).
	CAFiles []string
	// Retry is the backoff of retried requests; zero means DefaultRetry.
	Retry remote.Backoff
	// Timeouts bound connecting, the TLS handshake and stalled
	// connections; zero fields mean the environment's (TimeoutsFromEnv)
	// or DefaultTimeouts'.
	Timeouts Timeouts
	// StateDir, when set, keeps the digest each tag last resolved to, so a
	// tag still resolves when its registry cannot be reached (see Pull).
	StateDir string
	// Pull makes every tag resolve at the registry with no fallback to the
	// digest recorded in StateDir (docker build --pull).
	Pull bool
}

// Client resolves and pulls images. It is safe for concurrent use; it
// reuses authentication per repository.
type Client struct {
	blobs    *cache.BlobStore
	insecure map[string]bool
	jobs     int
	puller   *remote.Puller
	err      error
	// transportErr is err without the missing blob store: a client
	// without one can still check a login.
	transportErr error
	flight       singleflight.Group
	// remote are the options of every go-containerregistry call.
	remote []remote.Option
	// transport is the guarded base transport with request retries (no
	// auth).
	transport http.RoundTripper
	stateDir  string
	forcePull bool
	backoff   remote.Backoff
	stalls    *stallLog
	// sources maps blob digests to a repository known to hold them, for
	// cross-repository mounts on push.
	srcMu   sync.Mutex
	sources map[digest.Digest]name.Repository
	// traffic counts the bytes moved (Traffic).
	traffic traffic
}

// New returns a client.
func New(o Options) *Client {
	c := &Client{blobs: o.Blobs, insecure: map[string]bool{}, jobs: o.Jobs,
		stateDir: o.StateDir, forcePull: o.Pull, sources: map[digest.Digest]name.Repository{}}
	if c.jobs <= 0 {
		c.jobs = DefaultPullJobs
	}
	for _, h := range o.Insecure {
		c.insecure[strings.ToLower(h)] = true
	}
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	env, err := TimeoutsFromEnv()
	if err != nil {
		c.err = err
		return c
	}
	if o.Timeouts.Connect <= 0 {
		o.Timeouts.Connect = env.Connect
	}
	if o.Timeouts.Stall <= 0 {
		o.Timeouts.Stall = env.Stall
	}
	c.stalls = &stallLog{}
	base, err := baseTransport(o, c.stalls)
	if err != nil {
		c.err = err
		return c
	}
	backoff := o.Retry
	if backoff.Steps == 0 {
		backoff = DefaultRetry
	}
	c.backoff = backoff
	// Traffic counts what crosses the network, retries included.
	c.transport = &retryTransport{base: &guardTransport{base: &countingTransport{base: base, t: &c.traffic}, allowHTTP: c.allowHTTP}, backoff: backoff, stalls: c.stalls, timeouts: o.Timeouts.withDefaults()}
	c.remote = []remote.Option{
		remote.WithAuthFromKeychain(kc),
		remote.WithTransport(c.transport),
		remote.WithUserAgent("builder"),
		remote.WithRetryBackoff(backoff),
		remote.WithRetryStatusCodes(retryStatusCodes...),
		remote.WithRetryPredicate(neverRetry),
		remote.WithJobs(c.jobs),
	}
	c.puller, c.err = remote.NewPuller(c.remote...)
	c.transportErr = c.err
	if c.err == nil && c.blobs == nil {
		c.err = errors.New("registry client: no blob store (needed to resolve, pull and push)")
	}
	return c
}

// Resolved is an image resolved to one platform's manifest.
type Resolved struct {
	// Pinned is the canonical name, the tag when the reference had one and
	// the digest of the platform manifest, e.g.
	// "index.docker.io/library/busybox:latest@sha256:...".
	Pinned string
	// Named is the canonical name, the tag when the reference had one and
	// the digest it named or its tag resolved to: an index's for a
	// multi-platform image, as BuildKit names the FROM step ("" = Pinned).
	Named          string
	ManifestDigest digest.Digest
	Manifest       *v1.Manifest
	// Config is the raw config JSON.
	Config []byte
}

// allowHTTP says whether host (host[:port]) may be spoken to over HTTP.
func (c *Client) allowHTTP(host string) bool {
	host = strings.ToLower(host)
	if c.insecure[host] {
		return true
	}
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if c.insecure[h] || h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// ref is a parsed reference.
type ref struct {
	repo   name.Repository
	tag    string // "" when pinned by digest only
	digest digest.Digest
}

func (r ref) fetchRef() name.Reference {
	if r.digest != "" {
		return r.repo.Digest(r.digest.String())
	}
	return r.repo.Tag(r.tag)
}

// pinned formats the pinned reference for manifest digest d.
func (r ref) pinned(d digest.Digest) string {
	s := r.repo.Name()
	if r.tag != "" {
		s += ":" + r.tag
	}
	return s + "@" + d.String()
}

// parse parses s: [registry/]repo[:tag][@digest]. A reference without tag
// or digest gets the tag latest.
func (c *Client) parse(s string) (ref, error) {
	base, dg, hasDigest := strings.Cut(s, "@")
	var r ref
	if hasDigest {
		d, err := digest.Parse(dg)
		if err != nil {
			return r, fmt.Errorf("invalid digest: %w", err)
		}
		r.digest = d
	}
	hasTag := strings.LastIndex(base, ":") > strings.LastIndex(base, "/")
	parse := func(opts ...name.Option) error {
		if hasTag || !hasDigest {
			t, err := name.NewTag(base, opts...)
			if err != nil {
				return err
			}
			r.repo, r.tag = t.Repository, t.TagStr()
			return nil
		}
		repo, err := name.NewRepository(base, opts...)
		r.repo = repo
		return err
	}
	if err := parse(); err != nil {
		return r, err
	}
	if c.allowHTTP(r.repo.RegistryStr()) {
		if err := parse(name.Insecure); err != nil {
			return r, err
		}
	}
	return r, nil
}

// Resolve resolves s for platform p (an empty OS or architecture means
// linux and the host's architecture). Manifests and configs are kept in the
// blob store, so resolving a digest-pinned reference that was resolved
// before needs no network. A tag always asks the registry (a HEAD request,
// and a GET only for content not stored).
func (c *Client) Resolve(ctx context.Context, s string, p llb.Platform) (*Resolved, error) {
	r, err := c.resolve(ctx, s, p)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", s, err)
	}
	return r, nil
}

func (c *Client) resolve(ctx context.Context, s string, p llb.Platform) (*Resolved, error) {
	if c.err != nil {
		return nil, c.err
	}
	r, err := c.parse(s)
	if err != nil {
		return nil, err
	}
	p = p.WithDefaults()

	var raw []byte
	var d digest.Digest
	if r.digest != "" {
		d = r.digest
		raw, err = c.manifest(ctx, r.repo, d, -1)
	} else {
		tag := r.repo.Tag(r.tag)
		raw, d, err = c.manifestByTag(ctx, tag)
		if err != nil && !c.forcePull && unreachable(err) && ctx.Err() == nil {
			// Offline: use the digest the tag had last time, if its
			// content is stored.
			if last, ok := c.lastTag(tag); ok {
				if lraw, lerr := c.storedManifest(last); lerr == nil {
					raw, d, err = lraw, last, nil
				}
			}
		}
		if err == nil {
			c.recordTag(tag, d)
		}
	}
	if err != nil {
		return nil, err
	}
	named := r.pinned(d)
	for depth := 0; ; depth++ {
		kind, err := manifestKind(raw)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d, err)
		}
		if kind == kindManifest {
			break
		}
		if depth == 3 {
			return nil, fmt.Errorf("index %s: indexes nested too deep", d)
		}
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", d, err)
		}
		child, err := SelectManifest(idx.Manifests, p)
		if err != nil {
			return nil, err
		}
		d = digestutil.FromHash(child.Digest)
		if raw, err = c.manifest(ctx, r.repo, d, child.Size); err != nil {
			return nil, err
		}
	}

	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	if m.Config.Size > MaxConfigSize {
		return nil, fmt.Errorf("config %s: %d bytes, more than %d", m.Config.Digest, m.Config.Size, MaxConfigSize)
	}
	cd := digestutil.FromHash(m.Config.Digest)
	c.recordBlobSources(r.repo, manifestBlobs(m))
	if err := c.ensureBlob(ctx, r.repo, cd, m.Config.Size); err != nil {
		return nil, fmt.Errorf("config %s: %w", cd, err)
	}
	cfg, err := os.ReadFile(c.blobs.Path(cd))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", cd, err)
	}
	if _, err := v1.ParseConfigFile(bytes.NewReader(cfg)); err != nil {
		return nil, fmt.Errorf("config %s: %w", cd, err)
	}
	return &Resolved{Pinned: r.pinned(d), Named: named, ManifestDigest: d, Manifest: m, Config: cfg}, nil
}

// ResolveImageConfig resolves ref for platform p and returns its pinned
// and named references and raw config; it lets *Client serve as the
// Dockerfile frontend's image resolver.
func (c *Client) ResolveImageConfig(ctx context.Context, ref string, p llb.Platform) (string, string, []byte, error) {
	r, err := c.Resolve(ctx, ref, p)
	if err != nil {
		return "", "", nil, err
	}
	return r.Pinned, r.Named, r.Config, nil
}

// manifestByTag asks the registry which manifest tag names (HEAD) and
// fetches it unless it is stored.
func (c *Client) manifestByTag(ctx context.Context, tag name.Tag) ([]byte, digest.Digest, error) {
	var desc *v1.Descriptor
	err := c.retryOp(ctx, tag.RegistryStr(), "resolving "+tag.Name(), func() (err error) {
		desc, err = c.puller.Head(ctx, tag)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrInsecure) || isOpStalled(err) || ctx.Err() != nil {
			return nil, "", err
		}
		// Some registries do not answer HEAD properly, and HEAD errors have
		// no body to explain them: GET the tag.
		var got *remote.Descriptor
		gerr := c.retryOp(ctx, tag.RegistryStr(), "fetching the manifest of "+tag.Name(), func() (err error) {
			got, err = c.puller.Get(ctx, tag)
			return err
		})
		if gerr != nil {
			return nil, "", simplify(gerr)
		}
		d := digestutil.FromHash(got.Digest)
		if _, _, err := c.blobs.Put(ctx, bytes.NewReader(got.Manifest), d, int64(len(got.Manifest))); err != nil {
			return nil, "", fmt.Errorf("storing manifest %s: %w", d, err)
		}
		return got.Manifest, d, nil
	}
	d := digestutil.FromHash(desc.Digest)
	raw, err := c.manifest(ctx, tag.Repository, d, desc.Size)
	return raw, d, err
}

// manifest returns manifest d of repo from the store or the registry
// (storing it). size < 0 means unknown.
func (c *Client) manifest(ctx context.Context, repo name.Repository, d digest.Digest, size int64) ([]byte, error) {
	if size > MaxManifestSize {
		return nil, fmt.Errorf("manifest %s: %d bytes: %w (limit %d)", d, size, ErrManifestTooLarge, MaxManifestSize)
	}
	if raw, err := c.storedManifest(d); !errors.Is(err, cache.ErrNotFound) {
		return raw, err
	}
	var got *remote.Descriptor
	err := c.retryOp(ctx, repo.RegistryStr(), "fetching manifest "+d.String()+" of "+repo.Name(), func() (err error) {
		got, err = c.puller.Get(ctx, repo.Digest(d.String()))
		return err
	})
	if err != nil {
		return nil, simplify(err)
	}
	if size >= 0 && int64(len(got.Manifest)) != size {
		return nil, fmt.Errorf("manifest %s: got %d bytes, expected %d", d, len(got.Manifest), size)
	}
	// Put verifies the digest again; the puller already did for by-digest
	// requests.
	if _, _, err := c.blobs.Put(ctx, bytes.NewReader(got.Manifest), d, int64(len(got.Manifest))); err != nil {
		return nil, fmt.Errorf("storing manifest %s: %w", d, err)
	}
	return got.Manifest, nil
}

// ensureBlob downloads blob d of repo into the store unless it is there.
// Concurrent calls for the same blob share one download.
func (c *Client) ensureBlob(ctx context.Context, repo name.Repository, d digest.Digest, size int64) error {
	// A stored blob is used only when it verifies; a corrupt one is
	// removed by Verify and downloaded again.
	if err := c.blobs.VerifyStored(d, size); err == nil {
		return nil
	} else if !errors.Is(err, cache.ErrNotFound) && !errors.Is(err, cache.ErrCorrupt) {
		return err
	}
	_, err, _ := c.flight.Do(repo.Name()+"@"+d.String(), func() (any, error) {
		if _, err := c.blobs.Stat(d); err == nil {
			return nil, nil
		}
		return nil, c.retryOp(ctx, repo.RegistryStr(), "downloading blob "+d.String()+" of "+repo.Name(), func() error {
			return c.downloadBlob(ctx, repo, d, size)
		})
	})
	return err
}

// downloadBlob fetches blob d of repo into the store once.
func (c *Client) downloadBlob(ctx context.Context, repo name.Repository, d digest.Digest, size int64) error {
	l, err := c.puller.Layer(ctx, repo.Digest(d.String()))
	if err != nil {
		return simplify(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return simplify(err)
	}
	defer rc.Close()
	var r io.Reader = rc
	if size >= 0 {
		r = &sizedReader{r: rc, left: size}
	}
	progress := pullProgressFrom(ctx)
	if progress != nil {
		progress(d, 0, size, false)
		r = &progressReader{r: r, d: d, total: size, fn: progress}
	}
	if _, _, err := c.blobs.Put(ctx, r, d, size); err != nil {
		return simplify(err)
	}
	if progress != nil {
		progress(d, size, size, true)
	}
	return nil
}

// Pull makes sure every layer blob of r is in the blob store: missing ones
// are downloaded in parallel, streamed to disk and verified against digest
// and size before they are stored. It returns the layers in order, with
// their diff IDs from the config.
func (c *Client) Pull(ctx context.Context, r *Resolved) ([]cache.Layer, error) {
	layers, err := c.pull(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", r.Pinned, err)
	}
	return layers, nil
}

func (c *Client) pull(ctx context.Context, r *Resolved) ([]cache.Layer, error) {
	if c.err != nil {
		return nil, c.err
	}
	if r.Manifest == nil {
		return nil, errors.New("no manifest")
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(r.Config))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(cfg.RootFS.DiffIDs) != len(r.Manifest.Layers) {
		return nil, fmt.Errorf("config has %d diff_ids for %d layers", len(cfg.RootFS.DiffIDs), len(r.Manifest.Layers))
	}
	layers := make([]cache.Layer, len(r.Manifest.Layers))
	var missing []int
	seen := map[digest.Digest]bool{}
	for i, l := range r.Manifest.Layers {
		if !isLayer(l.MediaType) {
			return nil, fmt.Errorf("layer %d (%s): unsupported media type %q", i, l.Digest, l.MediaType)
		}
		d, err := digest.Parse(l.Digest.String())
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		layers[i] = cache.Layer{
			MediaType: string(l.MediaType),
			Digest:    d,
			Size:      l.Size,
			DiffID:    digestutil.FromHash(cfg.RootFS.DiffIDs[i]),
		}
		if seen[d] {
			continue
		}
		seen[d] = true
		// Present and intact (a corrupt blob is removed and fetched).
		if err := c.blobs.VerifyStored(d, l.Size); err == nil {
			continue
		}
		missing = append(missing, i)
	}
	if len(missing) == 0 {
		return layers, nil
	}
	src, err := c.parse(r.Pinned)
	if err != nil {
		return nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.jobs)
	for _, i := range missing {
		l := layers[i]
		g.Go(func() error {
			if err := c.ensureBlob(gctx, src.repo, l.Digest, l.Size); err != nil {
				return fmt.Errorf("layer %s: %w", l.Digest, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return layers, nil
}

func isLayer(mt types.MediaType) bool {
	switch mt {
	case types.OCILayer, types.OCIUncompressedLayer, types.OCILayerZStd,
		types.DockerLayer, types.DockerUncompressedLayer, types.DockerForeignLayer,
		types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer:
		return true
	}
	return false
}

type kind int

const (
	kindManifest kind = iota
	kindIndex
)

// manifestKind tells an image manifest from an index by its mediaType
// field (or, when it is missing, by its shape).
func manifestKind(raw []byte) (kind, error) {
	var probe struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     types.MediaType `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
		Config        json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return 0, err
	}
	switch probe.MediaType {
	case types.OCIImageIndex, types.DockerManifestList:
		return kindIndex, nil
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		return kindManifest, nil
	case types.DockerManifestSchema1, types.DockerManifestSchema1Signed:
		return 0, fmt.Errorf("docker schema 1 manifests are not supported")
	case "":
		if probe.SchemaVersion == 1 {
			return 0, fmt.Errorf("docker schema 1 manifests are not supported")
		}
		if probe.Manifests != nil {
			return kindIndex, nil
		}
		if probe.Config != nil {
			return kindManifest, nil
		}
	}
	return 0, fmt.Errorf("not an image: media type %q", probe.MediaType)
}

// simplify drops go-containerregistry's noisy detail from well-known
// registry errors, keeping the message ("manifest unknown") and the chain.
func simplify(err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) && len(terr.Errors) > 0 {
		msgs := make([]string, 0, len(terr.Errors))
		for _, e := range terr.Errors {
			m := e.Message
			if m == "" {
				m = string(e.Code)
			}
			msgs = append(msgs, strings.ToLower(m))
		}
		return &registryError{msg: strings.Join(msgs, "; "), err: err}
	}
	return err
}

type registryError struct {
	msg string
	err error
}

func (e *registryError) Error() string { return e.msg }
func (e *registryError) Unwrap() error { return e.err }

// guardTransport refuses plain HTTP to registries not allowed to use it and
// limits the size of manifest responses.
type guardTransport struct {
	base      http.RoundTripper
	allowHTTP func(host string) bool
}

func (g *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.allowHTTP(req.URL.Host) {
		return nil, fmt.Errorf("%s: %w (add it to the insecure registries)", req.URL.Host, ErrInsecure)
	}
	req = stripCrossHostAuth(req)
	resp, err := g.base.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet || !strings.Contains(req.URL.Path, "/manifests/") {
		return resp, err
	}
	if resp.ContentLength > MaxManifestSize {
		resp.Body.Close()
		return nil, fmt.Errorf("manifest %s: %d bytes: %w (limit %d)", req.URL.Path, resp.ContentLength, ErrManifestTooLarge, MaxManifestSize)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: MaxManifestSize}
	return resp, nil
}

// limitedBody fails a read past its limit.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, fmt.Errorf("manifest: %w (limit %d)", ErrManifestTooLarge, MaxManifestSize)
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, fmt.Errorf("manifest: %w (limit %d)", ErrManifestTooLarge, MaxManifestSize)
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
