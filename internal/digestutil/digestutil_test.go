package digestutil

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	d := digest.FromString("hello")
	h, err := ToHash(d)
	if err != nil {
		t.Fatal(err)
	}
	if h.Algorithm != "sha256" || h.Hex != d.Encoded() {
		t.Fatalf("ToHash(%s) = %+v", d, h)
	}
	if got := FromHash(h); got != d {
		t.Fatalf("FromHash = %s, want %s", got, d)
	}
	if got := FromHash(v1.Hash{Algorithm: "sha512", Hex: "ab"}); got != "sha512:ab" {
		t.Errorf("FromHash(sha512) = %q", got)
	}
	for _, bad := range []digest.Digest{"", "sha256:xyz", "nocolon", "sha256:" + digest.Digest(d.Encoded()[:10])} {
		if _, err := ToHash(bad); err == nil {
			t.Errorf("ToHash(%q) succeeded", bad)
		}
	}
}

func TestHashOf(t *testing.T) {
	t.Parallel()
	d := digest.FromString("x")
	if h := HashOf(d); h.String() != d.String() {
		t.Fatalf("HashOf(%s) = %s", d, h)
	}
}
