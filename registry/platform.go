package registry

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/builderdev/builder/llb"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// normalizePlatform fills defaults (linux, the host architecture) and maps
// architecture aliases and default variants the way containerd does:
// x86_64 -> amd64, aarch64 -> arm64, arm64/v8 -> arm64, arm -> arm/v7.
func normalizePlatform(p llb.Platform) llb.Platform {
	p.OS = strings.ToLower(p.OS)
	p.Architecture = strings.ToLower(p.Architecture)
	p.Variant = strings.ToLower(p.Variant)
	if p.OS == "" {
		p.OS = "linux"
	}
	if p.Architecture == "" {
		p.Architecture = runtime.GOARCH
	}
	switch p.Architecture {
	case "x86_64", "x86-64":
		p.Architecture, p.Variant = "amd64", ""
	case "aarch64":
		p.Architecture = "arm64"
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "i386", "i686":
		p.Architecture = "386"
	}
	switch {
	case p.Architecture == "arm64" && p.Variant == "v8":
		p.Variant = ""
	case p.Architecture == "arm" && p.Variant == "":
		p.Variant = "v7"
	case p.Architecture == "amd64" && p.Variant == "v1":
		p.Variant = ""
	}
	return p
}

func fromV1(p *v1.Platform) llb.Platform {
	return llb.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
}

// selectPlatform picks the manifest of idx for p: an exact match of
// os/architecture/variant (after normalization), else, when the index has
// no variant information for that os/architecture, the first entry with the
// same os and architecture. Entries without platform or with
// unknown/unknown (attestations) are never chosen.
func selectPlatform(idx *v1.IndexManifest, want llb.Platform) (v1.Descriptor, error) {
	var fallback *v1.Descriptor
	var available []string
	for i := range idx.Manifests {
		m := &idx.Manifests[i]
		if m.Platform == nil || m.Platform.OS == "unknown" || m.Platform.Architecture == "unknown" {
			continue
		}
		got := normalizePlatform(fromV1(m.Platform))
		available = append(available, fromV1(m.Platform).String())
		if got.OS != want.OS || got.Architecture != want.Architecture {
			continue
		}
		if got.Variant == want.Variant {
			return *m, nil
		}
		if fallback == nil && m.Platform.Variant == "" {
			fallback = m
		}
	}
	if fallback != nil {
		return *fallback, nil
	}
	if len(available) == 0 {
		return v1.Descriptor{}, fmt.Errorf("no image for platform %s: the index lists no platforms", want)
	}
	return v1.Descriptor{}, fmt.Errorf("no image for platform %s (available: %s)", want, strings.Join(available, ", "))
}
