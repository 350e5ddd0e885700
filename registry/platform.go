package registry

import (
	"fmt"
	"strings"

	"github.com/builderdev/builder/llb"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// PlatformOf converts an OCI descriptor's platform (nil = none).
func PlatformOf(p *v1.Platform) llb.Platform {
	if p == nil {
		return llb.Platform{}
	}
	return llb.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion}
}

// SelectManifest is the platform matcher of the code base: it picks from an
// index's manifests the one for want (llb.Platform.Match): an exact match
// of os/architecture/variant after normalization, else the first entry of
// the same os and architecture that names no variant. Entries without a
// platform or with unknown/unknown (attestations) are never chosen, except
// that an index of one entry without platform serves any platform (an OCI
// layout written without platforms). The error names the platforms the
// index has.
func SelectManifest(manifests []v1.Descriptor, want llb.Platform) (v1.Descriptor, error) {
	want = want.WithDefaults()
	best, bestScore := -1, 0
	var available []string
	for i, m := range manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" || m.Platform.Architecture == "unknown" {
			continue
		}
		available = append(available, PlatformOf(m.Platform).String())
		if s := want.Match(PlatformOf(m.Platform)); s > bestScore {
			best, bestScore = i, s
		}
	}
	switch {
	case best >= 0:
		return manifests[best], nil
	case len(manifests) == 1 && manifests[0].Platform == nil:
		return manifests[0], nil
	case len(available) == 0:
		return v1.Descriptor{}, fmt.Errorf("no image for platform %s: the index lists no platforms", want)
	}
	return v1.Descriptor{}, fmt.Errorf("no image for platform %s (available: %s)", want, strings.Join(available, ", "))
}
