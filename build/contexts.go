package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/frontend/dockerfile"
	"github.com/builderdev/builder/internal/digestutil"
	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/registry"
	"github.com/builderdev/builder/solver/ops"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	digest "github.com/opencontainers/go-digest"
)

// imageBackend is what a build resolves and pulls images with: the
// frontend's resolver and the worker's image source.
type imageBackend interface {
	ops.ImageSource
	dockerfile.ImageResolver
}

// contexts are a request's named contexts as the frontend and the worker
// take them.
type contexts struct {
	named  map[string]dockerfile.NamedContext
	locals map[string]ops.LocalDir
}

// namedContexts checks the request's named contexts and converts them:
// a directory becomes a local source "context:NAME" (with its own
// .dockerignore), an image or layout a reference.
func namedContexts(req Request) (*contexts, error) {
	c := &contexts{named: map[string]dockerfile.NamedContext{}, locals: map[string]ops.LocalDir{"context": {Path: req.ContextDir, IgnoreFile: req.IgnoreFile}}}
	for name, nc := range req.Contexts {
		name = strings.ToLower(name)
		switch {
		case nc.HTTP != "" && nc.Dir == "" && nc.Image == "" && nc.Layout == "":
			if !strings.HasPrefix(nc.HTTP, "http://") && !strings.HasPrefix(nc.HTTP, "https://") {
				return nil, fmt.Errorf("build context %q: %s is not an http(s):// URL", name, nc.HTTP)
			}
			c.named[name] = dockerfile.NamedContext{HTTP: nc.HTTP}
		case nc.Image != "" && nc.Dir == "" && nc.Layout == "" && nc.HTTP == "":
			c.named[name] = dockerfile.NamedContext{Image: nc.Image}
		case nc.Layout != "" && nc.Dir == "" && nc.Image == "" && nc.HTTP == "":
			c.named[name] = dockerfile.NamedContext{Image: dockerfile.LayoutRefPrefix + nc.Layout}
		case nc.Dir != "" && nc.Image == "" && nc.Layout == "" && nc.HTTP == "":
			fi, err := os.Stat(nc.Dir)
			if err != nil || !fi.IsDir() {
				return nil, fmt.Errorf("build context %q: %s is not a directory", name, nc.Dir)
			}
			excludes, err := readIgnoreFile(context.Background(), filepath.Join(nc.Dir, ".dockerignore"))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			local := "context:" + name
			c.locals[local] = ops.LocalDir{Path: nc.Dir}
			c.named[name] = dockerfile.NamedContext{Local: local, ExcludePatterns: excludes}
		default:
			return nil, fmt.Errorf("build context %q: set exactly one of a directory, an image, an OCI layout or a URL", name)
		}
	}
	return c, nil
}

// layoutImages serves oci-layout:// references from OCI layout
// directories and passes every other reference to next (the registry, or
// whatever wraps it): images of a layout are resolved from its index and
// their blobs imported into the blob store on pull.
type layoutImages struct {
	next  imageBackend
	blobs *cache.BlobStore

	mu     sync.Mutex
	images map[string]v1.Image // by pinned reference
}

func newLayoutImages(next imageBackend, blobs *cache.BlobStore) *layoutImages {
	return &layoutImages{next: next, blobs: blobs, images: map[string]v1.Image{}}
}

// splitLayoutRef splits oci-layout://PATH[:TAG|@DIGEST].
func splitLayoutRef(ref string) (dir, tag string, dgst digest.Digest) {
	p := strings.TrimPrefix(ref, dockerfile.LayoutRefPrefix)
	if i := strings.LastIndex(p, "@"); i >= 0 {
		dgst = digest.Digest(p[i+1:])
		p = p[:i]
	}
	if i := strings.LastIndex(p, ":"); i > strings.LastIndex(p, "/") {
		tag = p[i+1:]
		p = p[:i]
	}
	return p, tag, dgst
}

func (l *layoutImages) lookup(ref string, p llb.Platform) (v1.Image, string, error) {
	l.mu.Lock()
	if img, ok := l.images[ref]; ok {
		l.mu.Unlock()
		return img, ref, nil
	}
	l.mu.Unlock()
	dir, tag, want := splitLayoutRef(ref)
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, "", fmt.Errorf("oci layout %s: %w", dir, err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, "", fmt.Errorf("oci layout %s: %w", dir, err)
	}
	img, md, err := pickLayoutImage(idx, tag, want, p)
	if err != nil {
		return nil, "", fmt.Errorf("oci layout %s: %w", dir, err)
	}
	pinned := dockerfile.LayoutRefPrefix + dir
	if tag != "" {
		pinned += ":" + tag
	}
	pinned += "@" + md.String()
	l.mu.Lock()
	l.images[pinned] = img
	l.mu.Unlock()
	return img, pinned, nil
}

// pickLayoutImage finds the image of the index with the tag (annotation
// org.opencontainers.image.ref.name) or digest, descending into nested
// indexes by platform.
func pickLayoutImage(idx v1.ImageIndex, tag string, want digest.Digest, p llb.Platform) (v1.Image, v1.Hash, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, v1.Hash{}, err
	}
	var cands []v1.Descriptor
	for _, d := range im.Manifests {
		switch {
		case want != "" && d.Digest.String() == want.String():
		case want != "":
			continue
		case tag != "" && d.Annotations["org.opencontainers.image.ref.name"] != tag:
			continue
		}
		cands = append(cands, d)
	}
	if len(cands) == 0 {
		return nil, v1.Hash{}, fmt.Errorf("no image for tag %q digest %q", tag, want)
	}
	if slices.ContainsFunc(cands, func(d v1.Descriptor) bool { return d.Platform != nil }) {
		d, err := registry.SelectManifest(cands, p)
		if err != nil {
			return nil, v1.Hash{}, err
		}
		cands = []v1.Descriptor{d}
	}
	d := cands[0]
	if d.MediaType.IsIndex() {
		sub, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, v1.Hash{}, err
		}
		return pickLayoutImage(sub, "", "", p)
	}
	img, err := idx.Image(d.Digest)
	return img, d.Digest, err
}

// Resolve implements ops.ImageSource.
func (l *layoutImages) Resolve(ctx context.Context, ref string, p llb.Platform) (*registry.Resolved, error) {
	if !strings.HasPrefix(ref, dockerfile.LayoutRefPrefix) {
		return l.next.Resolve(ctx, ref, p)
	}
	img, pinned, err := l.lookup(ref, p)
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	md, err := img.Digest()
	if err != nil {
		return nil, err
	}
	return &registry.Resolved{Pinned: pinned, ManifestDigest: digestutil.FromHash(md), Manifest: m, Config: cfg}, nil
}

// ResolveImageConfig implements dockerfile.ImageResolver.
func (l *layoutImages) ResolveImageConfig(ctx context.Context, ref string, p llb.Platform) (string, string, []byte, error) {
	if !strings.HasPrefix(ref, dockerfile.LayoutRefPrefix) {
		return l.next.ResolveImageConfig(ctx, ref, p)
	}
	r, err := l.Resolve(ctx, ref, p)
	if err != nil {
		return "", "", nil, err
	}
	return r.Pinned, r.Named, r.Config, nil
}

// Pull implements ops.ImageSource: it copies the layout's layer blobs into
// the blob store (verified by digest and size).
func (l *layoutImages) Pull(ctx context.Context, r *registry.Resolved) ([]cache.Layer, error) {
	if !strings.HasPrefix(r.Pinned, dockerfile.LayoutRefPrefix) {
		return l.next.Pull(ctx, r)
	}
	img, _, err := l.lookup(r.Pinned, llb.Platform{})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		return nil, fmt.Errorf("%s: %d layers but %d diff ids", r.Pinned, len(layers), len(cf.RootFS.DiffIDs))
	}
	out := make([]cache.Layer, len(layers))
	for i, ly := range layers {
		d, err := ly.Digest()
		if err != nil {
			return nil, err
		}
		size, err := ly.Size()
		if err != nil {
			return nil, err
		}
		mt, err := ly.MediaType()
		if err != nil {
			return nil, err
		}
		if _, err := l.blobs.Stat(digestutil.FromHash(d)); err != nil {
			rc, err := ly.Compressed()
			if err != nil {
				return nil, err
			}
			_, _, err = l.blobs.Put(ctx, rc, digestutil.FromHash(d), size)
			rc.Close()
			if err != nil {
				return nil, fmt.Errorf("importing layer %s of %s: %w", d, r.Pinned, err)
			}
		}
		out[i] = cache.Layer{MediaType: string(mt), Digest: digestutil.FromHash(d), Size: size, DiffID: digestutil.FromHash(cf.RootFS.DiffIDs[i])}
	}
	return out, nil
}

// readIgnoreFor picks the ignore file of a build: DOCKERFILE.dockerignore
// next to the Dockerfile wins over CONTEXT/.dockerignore, as in BuildKit.
// Both are read as readInDir reads them. name is the file read, as
// ignoreFileName names it ("" when there is none).
func readIgnoreFor(ctx context.Context, dfPath, contextDir string) (pats []string, name string, err error) {
	if dfPath != "" {
		p := dfPath + ".dockerignore"
		pats, err := readIgnoreFile(ctx, p)
		if err == nil {
			return pats, ignoreFileName(p, contextDir), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, "", err
		}
	}
	pats, err = readIgnoreFile(ctx, filepath.Join(contextDir, ".dockerignore"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	return pats, ".dockerignore", nil
}

// ignoreFileName is the ignore file p in messages: its path relative to
// the context directory when it is inside (as the user knows it, also
// when the context is a temporary copy of a tar from stdin), else p as
// given.
func ignoreFileName(p, contextDir string) string {
	ap, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	ac, err := filepath.Abs(contextDir)
	if err != nil {
		return p
	}
	rel, err := filepath.Rel(ac, ap)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return p
	}
	return filepath.ToSlash(rel)
}

// readIgnoreFile parses the ignore file p; a missing one is an error
// satisfying errors.Is(err, os.ErrNotExist).
func readIgnoreFile(ctx context.Context, p string) ([]string, error) {
	data, err := readInDir(ctx, p)
	if err != nil {
		return nil, err
	}
	pats, err := dockerfile.ParseIgnore(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	return pats, nil
}

// readInDir reads the file p (a Dockerfile or an ignore file of a
// hostile context) confined to its directory, as BuildKit reads them
// from a local source of that directory: a symlink is resolved inside the
// directory (Dockerfile -> /etc/shadow names DIR/etc/shadow), only a
// regular file of at most MaxDockerfileSize bytes is read, and the read
// stops when ctx is cancelled.
func readInDir(ctx context.Context, p string) ([]byte, error) {
	data, err := fsutil.ReadFileInRoot(ctx, filepath.Dir(p), filepath.Base(p), MaxDockerfileSize)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			// Name the path as the user gave it, not the resolved one.
			return nil, &os.PathError{Op: pe.Op, Path: p, Err: pe.Err}
		}
		return nil, err
	}
	return data, nil
}

// ReadDockerfile reads the Dockerfile at path and the ignore patterns of
// the context for it, as readInDir reads them (confined to their
// directory, at most MaxDockerfileSize bytes): DOCKERFILE.dockerignore
// next to the Dockerfile wins over CONTEXT/.dockerignore, as in BuildKit.
// It fills the request's Dockerfile, DockerfileName, Excludes and
// IgnoreFile.
func ReadDockerfile(ctx context.Context, req *Request, path string) error {
	df, err := readInDir(ctx, path)
	if err != nil {
		return fmt.Errorf("failed to read dockerfile: %w", err)
	}
	excludes, ignoreFile, err := readIgnoreFor(ctx, path, req.ContextDir)
	if err != nil {
		return err
	}
	req.Dockerfile, req.DockerfileName, req.Excludes, req.IgnoreFile = df, filepath.Base(path), excludes, ignoreFile
	return nil
}

// MaxDockerfileSize bounds a Dockerfile.
const MaxDockerfileSize = 16 << 20

// LayoutImage reads the image of an OCI image layout, as an oci-layout://
// build context is read (go-containerregistry's layout package): ref is
// "DIR[:TAG][@sha256:...]", the image is the one for p when the index
// names platforms. Its layers are imported into blobs (verified by digest
// and size); it returns the resolved image (pinned reference, manifest
// digest, manifest and config) and its layers.
func LayoutImage(ctx context.Context, ref string, p llb.Platform, blobs *cache.BlobStore) (*registry.Resolved, []cache.Layer, error) {
	l := newLayoutImages(nil, blobs)
	r, err := l.Resolve(ctx, dockerfile.LayoutRefPrefix+ref, p)
	if err != nil {
		return nil, nil, err
	}
	layers, err := l.Pull(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	return r, layers, nil
}
