package build

import (
	"strings"

	"github.com/builderdev/builder/report"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Metadata is what buildx writes to --metadata-file for the result, plus
// the build's record (report.KeySteps & co).
func (res *Result) Metadata() map[string]any {
	d := res.Descriptor
	m := map[string]any{
		"containerimage.digest":     d.Digest.String(),
		"containerimage.descriptor": v1.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size},
	}
	if !d.MediaType.IsIndex() { // none for a multi-platform image
		m["containerimage.config.digest"] = res.ImageID.String()
	}
	if len(res.Names) > 0 {
		m["image.name"] = strings.Join(res.Names, ",")
	}
	if b := res.Record; b != nil {
		m[report.KeySteps] = b.Steps
		m[report.KeySummary] = b.Summary
		m[report.KeyTraffic] = b.Traffic
		if b.Image != nil {
			m[report.KeyImage] = b.Image
		}
	}
	return m
}
