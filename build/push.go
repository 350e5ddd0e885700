package build

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// notStored returns err, the store's answer for src, in docker push's
// words when src names no stored image: "An image does not exist locally
// with the tag: REPO" when no tag of its repository is stored, "tag does
// not exist: REPO:TAG" when others are. The result still wraps
// imagestore.ErrNotFound.
func notStored(images *imagestore.Store, src string, err error) error {
	if !errors.Is(err, imagestore.ErrNotFound) {
		return err
	}
	full, nerr := exporter.NormalizeName(src)
	all, lerr := images.List()
	if nerr != nil || lerr != nil {
		return err
	}
	repo := repository(full)
	for _, im := range all {
		for _, n := range im.Names {
			if n == full {
				return err // stored, but damaged: Get says how
			}
			if repository(n) == repo {
				return notStoredError{"tag does not exist: " + exporter.FamiliarName(full)}
			}
		}
	}
	return notStoredError{"An image does not exist locally with the tag: " + exporter.FamiliarName(repo)}
}

// repository is a normalized name without its tag or digest.
func repository(full string) string {
	full, _, _ = strings.Cut(full, "@")
	if i := strings.LastIndexByte(full, ':'); i > strings.LastIndexByte(full, '/') {
		return full[:i]
	}
	return full
}

// notStoredError is an imagestore.ErrNotFound in docker's words.
type notStoredError struct{ msg string }

func (e notStoredError) Error() string { return e.msg }
func (e notStoredError) Unwrap() error { return imagestore.ErrNotFound }

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
		// The store's errors name src already.
		return nil, nil, notStored(images, src, err)
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
