package ops

import (
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/snapshot"
	digest "github.com/opencontainers/go-digest"
)

func TestStepIdentity(t *testing.T) {
	t.Parallel()
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

// TestPlanPrune checks the pure plan of a prune on a cache held in memory.
func TestPlanPrune(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	d := func(s string) digest.Digest { return digest.FromString(s) }
	layer := func(s string, size int64) *cache.Layer {
		return &cache.Layer{Digest: d("blob " + s), DiffID: d("diff " + s), Size: size}
	}
	// Three builds of one step ("RUN x" on new content), saved on days
	// 1, 2, 3; the day-1 key was used again yesterday.
	key := func(k, id string, saved, used time.Duration) cache.KeyEntry {
		e := cache.KeyEntry{Key: d(k), ID: id, Time: now.Add(-saved),
			Info: &cache.KeyInfo{Key: d(k), Name: "[2/2] RUN x", Op: d("run"), Inputs: []cache.KeyInput{{Digest: d(k + "c"), Content: true}}}}
		if used > 0 {
			e.Used = now.Add(-used)
		}
		return e
	}
	state := func() *pruneState {
		st := &pruneState{
			Snapshots: map[string]snapshot.Info{
				"base": {Name: "base", Created: now.Add(-9 * day)},
				"r1":   {Name: "r1", Parent: "base", Created: now.Add(-9 * day)},
				"r2":   {Name: "r2", Parent: "base", Created: now.Add(-8 * day)},
				"r3":   {Name: "r3", Parent: "base", Created: now.Add(-7 * day)},
				"ctr":  {Name: "ctr", Parent: "r2", Created: now.Add(-7 * day)},
			},
			Records: map[string]*gcRecord{},
			Keys: []cache.KeyEntry{
				key("k1", "r1", 9*day, day),
				key("k2", "r2", 8*day, 0),
				key("k3", "r3", 7*day, 0),
			},
		}
		for _, id := range []string{"r1", "r2", "r3"} {
			st.Records[id] = &gcRecord{id: id, rec: record{ID: id, Snapshot: id, Parent: "base", Layer: layer(id, 100), Computed: true}, created: st.Snapshots[id].Created}
		}
		st.Records["base"] = &gcRecord{id: "base", rec: record{ID: "base", Snapshot: "base", Layer: layer("base", 10)}, created: now.Add(-9 * day)}
		st.Keys = append(st.Keys, cache.KeyEntry{Key: d("kb"), ID: "base", Time: now.Add(-9 * day)})
		return st
	}
	tests := []struct {
		name     string
		opt      PruneOptions
		results  string // removed results
		snaps    string // removed snapshots, in order
		keepBlob string // one blob that must stay
	}{
		// The newest key of the step is the one used last (k1), not
		// the one saved last.
		// "ctr" (deepest first) has no record and no container here.
		{"dangling", PruneOptions{}, "r2,r3", "ctr,r2,r3", "blob r1"},
		{"all", PruneOptions{All: true}, "base,r1,r2,r3", "ctr,r1,r2,r3,base", ""},
		// until counts from the last use: k1 was used a day ago.
		{"all until 2 days", PruneOptions{All: true, Until: 2 * day}, "r2,r3", "ctr,r2,r3", "blob r1"},
		{"all until 10 days", PruneOptions{All: true, Until: 10 * day}, "", "ctr", "blob r2"},
		// keep-storage removes the least recently used first: k2, then
		// k3 (310 bytes -> 110), keeping k1 saved first but used last.
		{"all keep 150", PruneOptions{All: true, KeepStorage: 150}, "r2,r3", "ctr,r2,r3", "blob r1"},
		{"all keep 250", PruneOptions{All: true, KeepStorage: 250}, "r2", "ctr,r2", "blob r3"},
		// A container's snapshot keeps its chain.
		{"all with a container", PruneOptions{All: true, KeepSnapshots: []string{"ctr"}}, "base,r1,r2,r3", "r1,r3", ""},
	}
	for _, tt := range tests {
		tt.opt.Now = now
		plan := planPrune(state(), tt.opt)
		if got := strings.Join(plan.Results, ","); got != tt.results {
			t.Errorf("%s: removed results %q, want %q", tt.name, got, tt.results)
		}
		if got := strings.Join(plan.DropSnapshots, ","); got != tt.snaps {
			t.Errorf("%s: removed snapshots %q, want %q", tt.name, got, tt.snaps)
		}
		if tt.keepBlob != "" && !plan.KeepBlobs[d(tt.keepBlob)] {
			t.Errorf("%s: blob %q not kept", tt.name, tt.keepBlob)
		}
		for k := range plan.DropKeys {
			for _, e := range state().Keys {
				if e.Key == k && !strings.Contains(tt.results+",base", e.ID) && tt.opt.KeepSnapshots == nil {
					t.Errorf("%s: key of %s dropped but its result kept", tt.name, e.ID)
				}
			}
		}
	}
}
