package dockerfile

import (
	"context"
	"strings"
	"testing"

	"github.com/builderdev/builder/llb"
)

// indexResolver answers as a registry does for a multi-platform image:
// pinned by the platform's manifest, named by the index's digest.
type indexResolver struct{ *fakeResolver }

const indexDigest = "sha256:f113f113f113f113f113f113f113f113f113f113f113f113f113f113f113f113"

func (r indexResolver) ResolveImageConfig(ctx context.Context, ref string, p llb.Platform) (string, string, []byte, error) {
	pinned, _, dt, err := r.fakeResolver.ResolveImageConfig(ctx, ref, p)
	name, _, _ := strings.Cut(pinned, "@")
	return pinned, name + "@" + indexDigest, dt, err
}

// TestFromStepNamedAsResolved: the FROM step (and an image COPY --from
// reads) is named by the reference as its name resolved, the index's
// digest for a multi-platform image, as BuildKit names it; the image op
// keeps the platform manifest's digest, and the vertex digests do not
// change with the name.
func TestFromStepNamedAsResolved(t *testing.T) {
	const df = "FROM busybox\nCOPY --from=alpine:3 /x /x\n"
	plain := mustConvert(t, df, nil)
	res := mustConvert(t, df, func(o *Options) { o.Resolver = indexResolver{newResolver()} })
	if plain.State.Digest() != res.State.Digest() {
		t.Errorf("the name changed the digest: %s, %s", plain.State.Digest(), res.State.Digest())
	}
	img := res.State.Inputs()[0]
	op := img.Op().(llb.ImageOp)
	if want := "[stage-0 1/2] FROM docker.io/library/busybox:latest@" + indexDigest; img.Name() != want {
		t.Errorf("FROM step %q, want %q", img.Name(), want)
	}
	if op.Ref != baseImage(plain.State).Ref || strings.Contains(op.Ref, indexDigest) {
		t.Errorf("image op ref %q, want the platform manifest's %q", op.Ref, baseImage(plain.State).Ref)
	}
	src := res.State.Inputs()[1]
	if want := "FROM docker.io/library/alpine:3@" + indexDigest; src.Name() != want {
		t.Errorf("COPY --from image %q, want %q", src.Name(), want)
	}
}
