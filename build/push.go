package build

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/builderdev/builder/exporter"
	imagestore "github.com/builderdev/builder/exporter/imagestore"
	"github.com/builderdev/builder/internal/digestutil"
	"github.com/builderdev/builder/registry"
	"github.com/builderdev/builder/solver"
	"github.com/docker/go-units"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// Manifester is what Push pushes: a v1.Image, or a v1.ImageIndex (a
// multi-platform image).
type Manifester interface {
	RawManifest() ([]byte, error)
	MediaType() (types.MediaType, error)
}

// Push uploads img to every name with reg, reporting one status per name
// to r with the bytes pushed in its log, and returns the manifest's
// descriptor.
func Push(ctx context.Context, reg *registry.Client, r solver.Reporter, img Manifester, names []string) (v1.Descriptor, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	d := digest.FromBytes(raw)
	desc := v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: digestutil.HashOf(d)}
	for _, name := range names {
		if err := pushOne(ctx, reg, r, img, name, d); err != nil {
			return desc, err
		}
	}
	return desc, nil
}

func pushOne(ctx context.Context, reg *registry.Client, r solver.Reporter, img Manifester, name string, d digest.Digest) error {
	st := solver.Status{Digest: digest.FromString("push " + name + time.Now().String()), Name: "pushing layers and manifest to " + name, Started: time.Now()}
	r.Status(st)
	var mu sync.Mutex
	var last time.Time
	var lastDone int64 = -1
	logf := func(format string, a ...any) {
		r.Log(solver.Log{Digest: st.Digest, Stream: 1, Data: fmt.Appendf(nil, format, a...), Timestamp: time.Now()})
	}
	po := registry.PushOptions{Progress: func(_ string, done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if done == lastDone || (done < total && time.Since(last) < 500*time.Millisecond) {
			return
		}
		last, lastDone = time.Now(), done
		logf("%s / %s\n", units.HumanSize(float64(done)), units.HumanSize(float64(total)))
	}, Blobs: func(_ string, uploaded, reused int) {
		logf("blobs: %d uploaded, %d mounted or already there (not downloaded)\n", uploaded, reused)
	}}
	var err error
	switch x := img.(type) {
	case v1.ImageIndex:
		_, err = reg.PushIndex(ctx, x, []string{name}, po)
	case v1.Image:
		_, err = reg.Push(ctx, x, []string{name}, po)
	default:
		err = fmt.Errorf("push %s: cannot push %T", name, img)
	}
	if err == nil {
		logf("pushed %s@%s\n", name, d)
	}
	st.Completed, st.Err = time.Now(), err
	r.Status(st)
	return err
}

// StoredImage is the image src names in the local store, as stored (its
// media types included), ready for Push, and the names it goes to: dests,
// else its own full name (docker push NAME).
func StoredImage(images *imagestore.Store, src string, dests []string) (Manifester, []string, error) {
	im, err := images.Get(src)
	if err != nil {
		return nil, nil, fmt.Errorf("push %s: %w", src, err)
	}
	if len(dests) == 0 {
		full, err := exporter.NormalizeName(src)
		if err != nil {
			return nil, nil, fmt.Errorf("push %s: %w", src, err)
		}
		dests = []string{full}
	}
	eimgs, err := images.LoadAll(im)
	if err != nil {
		return nil, nil, fmt.Errorf("push %s: %w", src, err)
	}
	// Push the stored manifest as it is (its media types included).
	var opt []exporter.Option
	switch im.Manifest.MediaType {
	case types.DockerManifestSchema2, types.DockerManifestList:
		opt = append(opt, exporter.WithDockerMediaTypes())
	}
	var vimg Manifester
	if im.Platforms != nil {
		vimg, err = exporter.IndexV1(eimgs, opt...)
	} else {
		vimg, err = eimgs[0].V1(opt...)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("push %s: %w", src, err)
	}
	return vimg, dests, nil
}
