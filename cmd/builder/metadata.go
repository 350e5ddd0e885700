package main

import (
	"strings"

	"github.com/builderdev/builder/build"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// buildMetadata is the --metadata-file content, with the keys buildx
// writes plus builder.steps and builder.summary.
func buildMetadata(res *build.Result) map[string]any {
	d := res.Descriptor
	m := map[string]any{
		"containerimage.config.digest": res.ImageID.String(),
		"containerimage.digest":        d.Digest.String(),
		"containerimage.descriptor":    v1.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size},
		"builder.steps":                res.Steps,
		"builder.summary":              res.Summary,
	}
	if len(res.Names) > 0 {
		m["image.name"] = strings.Join(res.Names, ",")
	}
	return m
}
