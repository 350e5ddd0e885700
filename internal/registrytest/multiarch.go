package registrytest

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BusyboxArm64Path is where the arm64 busybox of Debian's
// busybox-static:arm64 is looked for (the environment variable
// BUILDER_TEST_BUSYBOX_ARM64 overrides it); .ci/lib.sh's
// ensure_busybox_arm64 puts it there.
const BusyboxArm64Path = "/usr/local/lib/builder-test/arm64/bin/busybox"

// ErrNoArm64Busybox is returned when the arm64 busybox is missing.
var ErrNoArm64Busybox = errors.New("no arm64 busybox (install it with .ci/lib.sh ensure_busybox_arm64, or set BUILDER_TEST_BUSYBOX_ARM64)")

func arm64Busybox() string {
	if p := os.Getenv("BUILDER_TEST_BUSYBOX_ARM64"); p != "" {
		return p
	}
	return BusyboxArm64Path
}

var (
	indexOnce sync.Once
	indexImg  v1.ImageIndex
	indexErr  error
)

// BusyboxIndex returns a multi-platform busybox base image: an OCI index of
// BusyboxImage for linux/amd64 and the same image made of Debian's arm64
// static busybox for linux/arm64 (the host must be amd64). Its digest is
// the same on every run.
func BusyboxIndex() (v1.ImageIndex, error) {
	indexOnce.Do(func() { indexImg, indexErr = buildBusyboxIndex() })
	return indexImg, indexErr
}

func buildBusyboxIndex() (v1.ImageIndex, error) {
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("the busybox index is made on amd64 hosts, not %s", runtime.GOARCH)
	}
	arm := arm64Busybox()
	if _, err := os.Stat(arm); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoArm64Busybox, err)
	}
	amdImg, err := BusyboxImage()
	if err != nil {
		return nil, err
	}
	armImg, err := buildBusyboxFor(arm, "arm64")
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	return mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: amdImg, Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: armImg, Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	), nil
}
