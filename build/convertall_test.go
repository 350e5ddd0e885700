package build

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/builderdev/builder/frontend/dockerfile"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/solver"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// amd64Only resolves every reference to one amd64 image with no index,
// as a registry serves a single-platform image for any platform.
type amd64Only struct{}

func (amd64Only) ResolveImageConfig(_ context.Context, ref string, _ llb.Platform) (string, string, []byte, error) {
	cfg := v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}}}}
	dt, err := json.Marshal(cfg)
	pinned := ref + "@sha256:" + strings.Repeat("b", 64)
	return pinned, pinned, dt, err
}

type nopReporter struct{}

func (nopReporter) Status(solver.Status) {}
func (nopReporter) Log(solver.Log)       {}

// TestConvertAllWarnsForFirstPlatform: a multi-platform build reports
// the build checks of its first platform only, as BuildKit's Dockerfile
// frontend does (builder/build.go drops the Warn function of every other
// platform): a single-platform base is reported when the first
// --platform is not its platform, and not for later ones.
func TestConvertAllWarnsForFirstPlatform(t *testing.T) {
	t.Parallel()
	amd := llb.Platform{OS: "linux", Architecture: "amd64"}
	arm := llb.Platform{OS: "linux", Architecture: "arm64"}
	for _, tt := range []struct {
		platforms []llb.Platform
		want      []string
	}{
		{[]llb.Platform{amd, arm}, nil},
		{[]llb.Platform{arm, amd}, []string{`InvalidBaseImagePlatform: Base image reg/base was pulled with platform "linux/amd64", expected "linux/arm64" for current build (line 1)`}},
		{[]llb.Platform{arm, {OS: "linux", Architecture: "s390x"}}, []string{`InvalidBaseImagePlatform: Base image reg/base was pulled with platform "linux/amd64", expected "linux/arm64" for current build (line 1)`}},
	} {
		var mu sync.Mutex
		var got []string
		opt := dockerfile.Options{
			Dockerfile: []byte("FROM reg/base\nRUN true\n"),
			Filename:   "Dockerfile",
			Resolver:   amd64Only{},
			Warn: func(w dockerfile.Warning) {
				mu.Lock()
				got = append(got, w.Short())
				mu.Unlock()
			},
		}
		res, err := convertAll(context.Background(), nopReporter{}, tt.platforms, opt)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("--platform %v: warned %q, want %q", tt.platforms, got, tt.want)
		}
		var first []string
		for _, w := range res[0].Warnings {
			first = append(first, w.Short())
		}
		if strings.Join(first, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("--platform %v: result warnings %q, want %q", tt.platforms, first, tt.want)
		}
	}
}
