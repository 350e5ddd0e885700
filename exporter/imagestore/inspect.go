package imagestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/builderdev/builder/exporter"
	"github.com/builderdev/builder/llb"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Inspection is one element of `builder inspect`'s output, in the shape
// of `docker image inspect` (API v1.51, docker 28; the containerd image
// store's values): every field docker always prints is printed, with its
// zero value when unset, so that a --format template sees "" or [] as
// docker's does. History, Manifest and Platforms are builder's own.
type Inspection struct {
	ID          string   `json:"Id"`
	RepoTags    []string `json:"RepoTags"`
	RepoDigests []string `json:"RepoDigests"`
	// Parent and DockerVersion are the classic builder's: always empty.
	Parent  string `json:"Parent"`
	Comment string `json:"Comment"`
	// Created is RFC 3339 with nanoseconds, as docker prints it.
	Created       string          `json:"Created,omitempty"`
	DockerVersion string          `json:"DockerVersion"`
	Author        string          `json:"Author"`
	Config        InspectConfig   `json:"Config"`
	Architecture  string          `json:"Architecture"`
	Variant       string          `json:"Variant,omitempty"`
	Os            string          `json:"Os"`
	OsVersion     string          `json:"OsVersion,omitempty"`
	Size          int64           `json:"Size"`
	RootFS        InspectRootFS   `json:"RootFS"`
	Metadata      InspectMetadata `json:"Metadata"`
	Descriptor    v1.Descriptor   `json:"Descriptor"`
	History       []v1.History    `json:"History,omitempty"`
	Manifest      json.RawMessage `json:"Manifest"`
	// Platforms are the images of a multi-platform image (Descriptor and
	// Manifest are then its index; the other fields describe the image
	// builder run would pick: the host's platform, else the first).
	Platforms []PlatformInspection `json:"Platforms,omitempty"`
}

// InspectConfig is the image config as docker image inspect prints it
// (API v1.51): User, Env, Entrypoint, Cmd, Volumes, WorkingDir, Labels
// and OnBuild always, the others when set.
type InspectConfig struct {
	User         string              `json:"User"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env"`
	Entrypoint   []string            `json:"Entrypoint"`
	Cmd          []string            `json:"Cmd"`
	Volumes      map[string]struct{} `json:"Volumes"`
	WorkingDir   string              `json:"WorkingDir"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	ArgsEscaped  bool                `json:"ArgsEscaped,omitempty"`
	Healthcheck  *v1.HealthConfig    `json:"Healthcheck,omitempty"`
	OnBuild      []string            `json:"OnBuild"`
	Shell        []string            `json:"Shell,omitempty"`
}

// InspectRootFS is docker's RootFS: the layers' diff IDs.
type InspectRootFS struct {
	Type   string   `json:"Type,omitempty"`
	Layers []string `json:"Layers,omitempty"`
}

// InspectMetadata is docker's Metadata. The store does not record when
// a name was set: LastTagTime is the zero time, as docker prints for an
// image never tagged.
type InspectMetadata struct {
	LastTagTime time.Time `json:"LastTagTime"`
}

// PlatformInspection is one platform of a multi-platform image.
type PlatformInspection struct {
	Platform   v1.Platform   `json:"Platform"`
	ID         string        `json:"Id"`
	Created    string        `json:"Created,omitempty"`
	Size       int64         `json:"Size"`
	Descriptor v1.Descriptor `json:"Descriptor"`
}

// inspectTime is docker's Created: RFC 3339 with nanoseconds, "" unset.
func inspectTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// Inspect describes the image ref names as docker image inspect does.
// Size is the layers unpacked, as builder images shows (see UnpackedSize).
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
	size, err := s.UnpackedSize(top)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	c := cfg.Config
	x := &Inspection{
		ID: im.ID.String(), RepoTags: []string{}, RepoDigests: []string{}, Created: inspectTime(cfg.Created.Time),
		Author: cfg.Author, Architecture: cfg.Architecture, Variant: cfg.Variant, Os: cfg.OS, OsVersion: cfg.OSVersion, Size: size,
		Config: InspectConfig{User: c.User, ExposedPorts: c.ExposedPorts, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd,
			Volumes: c.Volumes, WorkingDir: c.WorkingDir, Labels: c.Labels, StopSignal: c.StopSignal, ArgsEscaped: c.ArgsEscaped,
			Healthcheck: c.Healthcheck, OnBuild: c.OnBuild, Shell: c.Shell},
		RootFS:     InspectRootFS{Type: cfg.RootFS.Type},
		History:    cfg.History,
		Descriptor: im.Manifest, Manifest: rawManifest,
	}
	// As docker's containerd store: the comment of the last history entry.
	if n := len(cfg.History); n > 0 {
		x.Comment = cfg.History[n-1].Comment
	}
	for _, d := range cfg.RootFS.DiffIDs {
		x.RootFS.Layers = append(x.RootFS.Layers, d.String())
	}
	if top.Platforms != nil {
		if x.Manifest, err = s.RawIndex(top); err != nil {
			return nil, err
		}
		x.ID, x.Descriptor = top.ID.String(), top.Manifest
		for _, c := range top.Platforms {
			n, err := s.UnpackedSize(c)
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", ref, err)
			}
			x.Platforms = append(x.Platforms, PlatformInspection{Platform: *c.Platform, ID: c.ID.String(), Created: inspectTime(c.Created), Size: n, Descriptor: c.Manifest})
		}
	}
	// As docker's containerd store: each name, and its repository at the
	// stored manifest's (or index's) digest.
	seen := map[string]bool{}
	for _, n := range top.Names {
		x.RepoTags = append(x.RepoTags, exporter.FamiliarName(n))
		if d := exporter.FamiliarName(n[:strings.LastIndex(n, ":")]) + "@" + top.Manifest.Digest.String(); !seen[d] {
			seen[d] = true
			x.RepoDigests = append(x.RepoDigests, d)
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
