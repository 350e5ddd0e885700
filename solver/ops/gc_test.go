package ops

import (
	"testing"

	"github.com/builderdev/builder/cache"
	digest "github.com/opencontainers/go-digest"
)

func TestStepIdentity(t *testing.T) {
	d := func(s string) digest.Digest { return digest.FromString(s) }
	from := func(key, pin string) cache.KeyEntry {
		return cache.KeyEntry{Key: d(key), Info: &cache.KeyInfo{Key: d(key), Name: "[1/2] FROM x/busybox:latest@sha256:" + pin, Op: d("op " + key)}}
	}
	run := func(key, parent, name string) cache.KeyEntry {
		return cache.KeyEntry{Key: d(key), Info: &cache.KeyInfo{Key: d(key), Name: name, Op: d("run"),
			Inputs: []cache.KeyInput{{Name: "[1/2] FROM", Digest: d(parent)}, {Name: "[internal] load build context", Digest: d(key + "content"), Content: true}}}}
	}
	pinA, pinB := "a725e947cb11728db836a60bb19ed0bf913acee18a1c01c6882d42f0231956e4", "0c41b547848d415c1191e4ef333761bd58fc7431e768e12fd073841a75214e01"
	tests := []struct {
		name    string
		entries []cache.KeyEntry
		a, b    string
		same    bool
	}{
		{"base moved: same FROM step", []cache.KeyEntry{from("f1", pinA), from("f2", pinB)}, "f1", "f2", true},
		{"new context content: same step", []cache.KeyEntry{from("f", pinA), run("r1", "f", "[2/2] RUN x"), run("r2", "f", "[2/2] RUN x")}, "r1", "r2", true},
		{"other command", []cache.KeyEntry{from("f", pinA), run("r1", "f", "[2/2] RUN x"), run("r2", "f", "[2/2] RUN y")}, "r1", "r2", false},
		{"other base name", []cache.KeyEntry{from("f", pinA), {Key: d("g"), Info: &cache.KeyInfo{Key: d("g"), Name: "[1/2] FROM alpine"}}, run("r1", "f", "[2/2] RUN x"), run("r2", "g", "[2/2] RUN x")}, "r1", "r2", false},
		{"keys without info are their own step", []cache.KeyEntry{{Key: d("k1")}, {Key: d("k2")}}, "k1", "k2", false},
	}
	for _, tt := range tests {
		ids := stepIdentity(tt.entries)
		if ids[d(tt.a)] == "" || ids[d(tt.b)] == "" {
			t.Errorf("%s: no identity", tt.name)
		}
		if got := ids[d(tt.a)] == ids[d(tt.b)]; got != tt.same {
			t.Errorf("%s: same identity = %v, want %v", tt.name, got, tt.same)
		}
	}
}
