package imagestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/exporter"
	"github.com/builderdev/builder/internal/digestutil"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/registry"
	digest "github.com/opencontainers/go-digest"
)

// Remote is what Source falls back to (*registry.Client).
type Remote interface {
	Resolve(ctx context.Context, ref string, p llb.Platform) (*registry.Resolved, error)
	Pull(ctx context.Context, r *registry.Resolved) ([]cache.Layer, error)
}

// Source resolves and pulls images from the store first and from Remote
// otherwise. It serves as the Dockerfile frontend's image resolver
// (ResolveImageConfig) and as the image op's source (Resolve, Pull).
//
// A name in the store ("app", "app:1") is used as stored, as docker build
// uses local images; it is pinned as "<full name>@<manifest digest>". A
// pinned reference whose digest is a stored manifest is served from the
// store whatever its name, so builds FROM stored images need no network.
// A stored image for another platform than the one asked for is ignored.
//
// With AlwaysPull set (docker build --pull: "always attempt to pull a newer
// version of the image") a name is always resolved by Remote, never from
// the store, so a moved tag gives its new digest and a name that only the
// store holds fails as the registry's answer says. A reference pinned by
// digest still comes from the store when it holds that manifest: its
// content cannot be newer anywhere.
type Source struct {
	Store      *Store
	Remote     Remote
	AlwaysPull bool
}

// lookup finds ref in the store, for platform p.
func (s *Source) lookup(ref string, p llb.Platform) (*registry.Resolved, error) {
	name, dg, pinned := strings.Cut(ref, "@")
	if s.AlwaysPull && !pinned {
		return nil, nil
	}
	var im Image
	pin := name
	if pinned {
		if _, err := digest.Parse(dg); err != nil {
			return nil, nil
		}
		var err error
		im, err = s.Store.Get("x@" + dg)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	} else {
		full, err := exporter.NormalizeName(name)
		if err != nil {
			return nil, nil // not a name the store can hold
		}
		all, err := s.Store.List()
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(all, func(x Image) bool { return slices.Contains(x.Names, full) })
		if i < 0 {
			return nil, nil
		}
		im, pin = all[i], full
	}
	if im.Platforms != nil {
		c, err := Select(im, p)
		if err != nil {
			return nil, nil // none for p: as a single image of another platform
		}
		im = c
	}
	m, _, err := s.Store.manifest(im.Manifest.Digest)
	if err != nil {
		return nil, err
	}
	cfg, rawConfig, err := s.Store.rawConfig(m.Config.Digest)
	if err != nil {
		return nil, err
	}
	if p.Match(llb.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant, OSVersion: cfg.OSVersion}) == 0 {
		return nil, nil
	}
	md := digestutil.FromHash(im.Manifest.Digest)
	return &registry.Resolved{Pinned: pin + "@" + md.String(), ManifestDigest: md, Manifest: m, Config: rawConfig}, nil
}

// Resolve implements the image op's source: the store first, then Remote.
func (s *Source) Resolve(ctx context.Context, ref string, p llb.Platform) (*registry.Resolved, error) {
	r, err := s.lookup(ref, p)
	if err != nil {
		return nil, fmt.Errorf("local image %s: %w", ref, err)
	}
	if r != nil {
		return r, nil
	}
	return s.Remote.Resolve(ctx, ref, p)
}

// ResolveImageConfig implements the Dockerfile frontend's ImageResolver.
func (s *Source) ResolveImageConfig(ctx context.Context, ref string, p llb.Platform) (string, string, []byte, error) {
	r, err := s.Resolve(ctx, ref, p)
	if err != nil {
		return "", "", nil, err
	}
	return r.Pinned, r.Named, r.Config, nil
}

// Pull returns the layers of r: from the store when it holds r's manifest
// and every layer, from Remote otherwise.
func (s *Source) Pull(ctx context.Context, r *registry.Resolved) ([]cache.Layer, error) {
	if im, err := s.Store.Get("x@" + r.ManifestDigest.String()); err == nil {
		img, err := s.Store.Load(im)
		if err != nil {
			return nil, err
		}
		if s.Store.checkLayers(img.Layers) == nil {
			return img.Layers, nil
		}
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return s.Remote.Pull(ctx, r)
}
