package imagestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/builderdev/builder/exporter"
	"github.com/builderdev/builder/llb"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Inspection is one element of `builder inspect`'s output: Docker's
// image inspect fields plus the manifest and its descriptor.
type Inspection struct {
	ID           string          `json:"Id"`
	RepoTags     []string        `json:"RepoTags"`
	Created      time.Time       `json:"Created"`
	Architecture string          `json:"Architecture"`
	Os           string          `json:"Os"`
	Variant      string          `json:"Variant,omitempty"`
	Size         int64           `json:"Size"`
	Author       string          `json:"Author,omitempty"`
	Config       v1.Config       `json:"Config"`
	RootFS       v1.RootFS       `json:"RootFS"`
	History      []v1.History    `json:"History,omitempty"`
	Descriptor   v1.Descriptor   `json:"Descriptor"`
	Manifest     json.RawMessage `json:"Manifest"`
	// Platforms are the images of a multi-platform image (Descriptor and
	// Manifest are then its index; the other fields describe the image
	// builder run would pick: the host's platform, else the first).
	Platforms []PlatformInspection `json:"Platforms,omitempty"`
}

// PlatformInspection is one platform of a multi-platform image.
type PlatformInspection struct {
	Platform   v1.Platform   `json:"Platform"`
	ID         string        `json:"Id"`
	Created    time.Time     `json:"Created"`
	Size       int64         `json:"Size"`
	Descriptor v1.Descriptor `json:"Descriptor"`
}

// Inspect describes the image ref names as docker image inspect does.
func (s *Store) Inspect(ref string) (*Inspection, error) {
	top, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	im := top
	if top.Platforms != nil {
		if im, err = Select(top, llb.Platform{}); err != nil {
			im = top.Platforms[0]
		}
	}
	rawManifest, rawConfig, err := s.Raw(im)
	if err != nil {
		return nil, err
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(rawConfig, &cfg); err != nil {
		return nil, fmt.Errorf("image %s: config: %w", ref, err)
	}
	x := &Inspection{
		ID: im.ID.String(), RepoTags: []string{}, Created: cfg.Created.Time,
		Architecture: cfg.Architecture, Os: cfg.OS, Variant: cfg.Variant, Size: im.Size,
		Author: cfg.Author, Config: cfg.Config, RootFS: cfg.RootFS, History: cfg.History,
		Descriptor: im.Manifest, Manifest: rawManifest,
	}
	for _, n := range top.Names {
		x.RepoTags = append(x.RepoTags, exporter.FamiliarName(n))
	}
	if top.Platforms != nil {
		if x.Manifest, err = s.RawIndex(top); err != nil {
			return nil, err
		}
		x.ID, x.Size, x.Descriptor = top.ID.String(), top.Size, top.Manifest
		for _, c := range top.Platforms {
			x.Platforms = append(x.Platforms, PlatformInspection{Platform: *c.Platform, ID: c.ID.String(), Created: c.Created, Size: c.Size, Descriptor: c.Manifest})
		}
	}
	return x, nil
}

// InspectAll inspects every ref in order, as docker image inspect: the
// images found are listed (never nil), the errors of the others joined.
func (s *Store) InspectAll(refs []string) ([]*Inspection, error) {
	out := []*Inspection{}
	var errs []error
	for _, ref := range refs {
		x, err := s.Inspect(ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, x)
	}
	return out, errors.Join(errs...)
}
