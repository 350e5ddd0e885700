package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/frontend/dockerfile"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/registry"
	"github.com/builderdev/builder/snapshot/fsutil"
	"github.com/builderdev/builder/solver/ops"
	"github.com/builderdev/builder/state"
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

// buildContexts are the parsed --build-context flags.
type buildContexts struct {
	named  map[string]dockerfile.NamedContext
	locals map[string]ops.LocalDir
	// layouts are the oci-layout contexts by their oci-layout:// reference.
	layouts map[string]string
}

// parseBuildContexts reads buildx --build-context name=VALUE flags: a
// directory, docker-image://REF or oci-layout://PATH[:TAG]
// (or oci-layout://PATH@sha256:...).
func parseBuildContexts(specs []string) (*buildContexts, error) {
	bc := &buildContexts{named: map[string]dockerfile.NamedContext{}, locals: map[string]ops.LocalDir{}, layouts: map[string]string{}}
	for _, s := range specs {
		name, val, ok := strings.Cut(s, "=")
		if !ok || name == "" || val == "" {
			return nil, fmt.Errorf("--build-context %q: want name=VALUE", s)
		}
		name = strings.ToLower(name)
		switch {
		case strings.HasPrefix(val, "docker-image://"):
			bc.named[name] = dockerfile.NamedContext{Image: strings.TrimPrefix(val, "docker-image://")}
		case strings.HasPrefix(val, dockerfile.LayoutRefPrefix):
			bc.named[name] = dockerfile.NamedContext{Image: val}
			bc.layouts[val] = name
		case strings.Contains(val, "://"):
			return nil, fmt.Errorf("--build-context %q: unsupported source %q (a directory, docker-image:// or oci-layout://)", s, val)
		default:
			fi, err := os.Stat(val)
			if err != nil || !fi.IsDir() {
				return nil, fmt.Errorf("--build-context %q: %s is not a directory", s, val)
			}
			excludes, err := readIgnoreFile(context.Background(), filepath.Join(val, ".dockerignore"))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			local := "context:" + name
			bc.locals[local] = ops.LocalDir{Path: val}
			bc.named[name] = dockerfile.NamedContext{Local: local, ExcludePatterns: excludes}
		}
	}
	return bc, nil
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
		if d.Platform != nil && p.OS != "" && (d.Platform.OS != p.OS || d.Platform.Architecture != p.Architecture) {
			continue
		}
		cands = append(cands, d)
	}
	if len(cands) == 0 {
		return nil, v1.Hash{}, fmt.Errorf("no image for tag %q digest %q platform %s", tag, want, p)
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
	return &registry.Resolved{Pinned: pinned, ManifestDigest: digest.Digest(md.String()), Manifest: m, Config: cfg}, nil
}

// ResolveImageConfig implements dockerfile.ImageResolver.
func (l *layoutImages) ResolveImageConfig(ctx context.Context, ref string, p llb.Platform) (string, []byte, error) {
	if !strings.HasPrefix(ref, dockerfile.LayoutRefPrefix) {
		return l.next.ResolveImageConfig(ctx, ref, p)
	}
	r, err := l.Resolve(ctx, ref, p)
	if err != nil {
		return "", nil, err
	}
	return r.Pinned, r.Config, nil
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
		if _, err := l.blobs.Stat(digest.Digest(d.String())); err != nil {
			rc, err := ly.Compressed()
			if err != nil {
				return nil, err
			}
			_, _, err = l.blobs.Put(ctx, rc, digest.Digest(d.String()), size)
			rc.Close()
			if err != nil {
				return nil, fmt.Errorf("importing layer %s of %s: %w", d, r.Pinned, err)
			}
		}
		out[i] = cache.Layer{MediaType: string(mt), Digest: digest.Digest(d.String()), Size: size, DiffID: digest.Digest(cf.RootFS.DiffIDs[i].String())}
	}
	return out, nil
}

// readIgnoreFor picks the ignore file of a build: DOCKERFILE.dockerignore
// next to the Dockerfile wins over CONTEXT/.dockerignore, as in BuildKit.
// Both are read as readInDir reads them.
func readIgnoreFor(ctx context.Context, dfPath, contextDir string) ([]string, error) {
	if dfPath != "" {
		pats, err := readIgnoreFile(ctx, dfPath+".dockerignore")
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			return pats, err
		}
	}
	pats, err := readIgnoreFile(ctx, filepath.Join(contextDir, ".dockerignore"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return pats, err
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
// regular file of at most maxDockerfileSize bytes is read, and the read
// stops when ctx is cancelled.
func readInDir(ctx context.Context, p string) ([]byte, error) {
	data, err := fsutil.ReadFileInRoot(ctx, filepath.Dir(p), filepath.Base(p), maxDockerfileSize)
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

// maxDockerfileSize bounds a Dockerfile read from stdin or a context tar.
const maxDockerfileSize = 16 << 20

// extractContextTar extracts a build context tar (plain; as docker build
// - < ctx.tar) into dir. Every entry stays inside dir: names are resolved
// inside it, and links pointing out are kept as links, never followed.
func extractContextTar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the context tar: %w", err)
		}
		name := filepath.Clean("/" + hdr.Name)
		if name == "/" {
			continue
		}
		parent, err := fsutil.MkdirAllInRoot(dir, filepath.Dir(name), 0o755, nil)
		if err != nil {
			return fmt.Errorf("context tar entry %s: %w", hdr.Name, err)
		}
		target := filepath.Join(parent, filepath.Base(name))
		mode := os.FileMode(hdr.Mode & 0o7777)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if fi, err := os.Lstat(target); err == nil && fi.IsDir() {
				err = os.Chmod(target, mode.Perm())
				if err != nil {
					return err
				}
				continue
			}
			if err := os.Mkdir(target, mode.Perm()); err != nil {
				return fmt.Errorf("context tar entry %s: %w", hdr.Name, err)
			}
		case tar.TypeReg, tar.TypeRegA:
			os.Remove(target)
			f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode.Perm())
			if err != nil {
				return fmt.Errorf("context tar entry %s: %w", hdr.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("context tar entry %s: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			os.Remove(target)
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return fmt.Errorf("context tar entry %s: %w", hdr.Name, err)
			}
		case tar.TypeLink:
			src, err := fsutil.ResolveParentInRoot(dir, hdr.Linkname)
			if err != nil {
				return fmt.Errorf("context tar entry %s: %w", hdr.Name, err)
			}
			if fi, err := os.Lstat(src); err != nil || !fi.Mode().IsRegular() {
				return fmt.Errorf("context tar entry %s: hard link to %s, which is not an earlier regular file", hdr.Name, hdr.Linkname)
			}
			os.Remove(target)
			if err := os.Link(src, target); err != nil {
				return fmt.Errorf("context tar entry %s: %w", hdr.Name, err)
			}
		default:
			// Devices, fifos and others have no place in a build context.
		}
	}
}

// stdinInputs turns "-" as the context (a tar on stdin, plain, gzip or
// bzip2, or else a Dockerfile with an empty context, as buildx) or as -f
// (a Dockerfile on stdin) into paths under root. The returned cleanup
// removes what it made.
func stdinInputs(o *BuildOptions, root *state.Root, stdin io.Reader) (func(), error) {
	noop := func() {}
	if o.ContextDir != "-" && o.Dockerfile != "-" {
		return noop, nil
	}
	if o.ContextDir == "-" && o.Dockerfile == "-" {
		return noop, errors.New("the build context and the Dockerfile cannot both come from stdin")
	}
	tmp, err := root.TempDir("stdin-")
	if err != nil {
		return noop, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	if stdin == nil {
		stdin = os.Stdin
	}
	if o.Dockerfile == "-" {
		o.Dockerfile, err = saveStdinDockerfile(stdin, tmp)
		return cleanup, err
	}
	ctxDir := filepath.Join(tmp, "context")
	if err := os.Mkdir(ctxDir, 0o755); err != nil {
		return cleanup, err
	}
	kind, in, err := sniffStdin(stdin)
	if err != nil {
		return cleanup, err
	}
	o.ContextDir = ctxDir
	if kind == stdinDockerfile {
		// docker build - < Dockerfile: an empty context, as buildx.
		if o.Dockerfile != "" {
			return cleanup, errors.New("ambiguous Dockerfile source: both stdin and flag correspond to Dockerfiles")
		}
		o.Dockerfile, err = saveStdinDockerfile(in, tmp)
		return cleanup, err
	}
	if err := extractContextTar(in, ctxDir); err != nil {
		return cleanup, err
	}
	if o.Dockerfile != "" && !filepath.IsAbs(o.Dockerfile) {
		// -f names a file inside the tar, as docker build does.
		p, err := fsutil.ResolveInRoot(ctxDir, o.Dockerfile)
		if err != nil {
			return cleanup, err
		}
		o.Dockerfile = p
	}
	return cleanup, nil
}

// saveStdinDockerfile writes the Dockerfile read from r (at most
// maxDockerfileSize bytes) to tmp/Dockerfile and returns its path.
func saveStdinDockerfile(r io.Reader, tmp string) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxDockerfileSize+1))
	if err != nil {
		return "", fmt.Errorf("reading the Dockerfile from stdin: %w", err)
	}
	if len(data) > maxDockerfileSize {
		return "", fmt.Errorf("the Dockerfile on stdin is larger than %d bytes", maxDockerfileSize)
	}
	p := filepath.Join(tmp, "Dockerfile")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return "", err
	}
	return p, nil
}

// localsWith returns the worker's local sources: the main context and the
// local named contexts.
func (bc *buildContexts) localsWith(contextDir string) map[string]ops.LocalDir {
	m := map[string]ops.LocalDir{"context": {Path: contextDir}}
	for k, v := range bc.locals {
		m[k] = v
	}
	return m
}
