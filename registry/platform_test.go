package registry

import (
	"strings"
	"testing"

	"github.com/builderdev/builder/llb"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestSelectManifest(t *testing.T) {
	t.Parallel()
	desc := func(hex byte, p *v1.Platform) v1.Descriptor {
		return v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(string(hex), 64)}, Platform: p}
	}
	idx := []v1.Descriptor{
		desc('0', &v1.Platform{OS: "unknown", Architecture: "unknown"}),
		desc('1', &v1.Platform{OS: "linux", Architecture: "amd64"}),
		desc('2', &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}),
		desc('3', &v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}),
		desc('4', &v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}),
		desc('5', &v1.Platform{OS: "linux", Architecture: "ppc64le"}),
	}
	for _, tt := range []struct {
		want string
		hex  byte
		err  string
	}{
		{"linux/amd64", '1', ""},
		{"linux/arm64", '2', ""}, // arm64's optional v8
		{"linux/arm64/v8", '2', ""},
		{"linux/arm/v7", '4', ""},
		{"linux/arm", '4', ""}, // arm means arm/v7
		{"linux/arm/v6", '3', ""},
		{"linux/ppc64le", '5', ""},
		{"linux/s390x", 0, "no image for platform linux/s390x (available: linux/amd64, linux/arm64/v8, linux/arm/v6, linux/arm/v7, linux/ppc64le)"},
		{"linux/arm/v5", 0, "no image for platform linux/arm/v5"},
	} {
		p, err := llb.ParsePlatform(tt.want)
		if err != nil {
			t.Fatal(err)
		}
		d, err := SelectManifest(idx, p)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: got %v, %v; want error %q", tt.want, d.Platform, err, tt.err)
			}
			continue
		}
		if err != nil || d.Digest.Hex[0] != tt.hex {
			t.Errorf("%s: got %v (%v), want entry %c", tt.want, d.Platform, err, tt.hex)
		}
	}
	// An index without variant information serves any variant of its
	// architecture.
	novar := []v1.Descriptor{desc('6', &v1.Platform{OS: "linux", Architecture: "arm"})}
	if d, err := SelectManifest(novar, llb.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}); err != nil || d.Digest.Hex[0] != '6' {
		t.Errorf("arm/v6 from an index without variants: %v, %v", d.Platform, err)
	}
	if _, err := SelectManifest(idx[:1], llb.Platform{OS: "linux", Architecture: "amd64"}); err == nil || !strings.Contains(err.Error(), "lists no platforms") {
		t.Errorf("attestations only: %v", err)
	}
}
