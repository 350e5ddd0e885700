package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/registrytest"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/state"
	digest "github.com/opencontainers/go-digest"
)

func TestPruneRefusesWithoutTerminal(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	var out bytes.Buffer
	err := Prune(context.Background(), PruneOptions{Root: root}, strings.NewReader("y\n"), &out)
	if err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("prune without -f and without a terminal: %v, want a refusal naming --force", err)
	}
}

func TestPruneRefusesWhileRootInUse(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	build, err := state.Open(root, state.Options{Lock: state.LockShared}) // as a running build
	if err != nil {
		t.Fatal(err)
	}
	err = Prune(context.Background(), PruneOptions{Root: root, Force: true, All: true}, nil, io.Discard)
	build.Close()
	if !errors.Is(err, state.ErrBusy) {
		t.Fatalf("prune during a build: %v, want %v", err, state.ErrBusy)
	}
	if err := Prune(context.Background(), PruneOptions{Root: root, Force: true, All: true}, nil, io.Discard); err != nil {
		t.Fatalf("prune after the build: %v", err)
	}
}

// vertexLines matches plain progress lines "#5 [2/4] COPY ..." and
// "#5 CACHED".
var vertexLine = regexp.MustCompile(`(?m)^#(\d+) (\[[^\]]*\] (?:COPY|RUN).*|CACHED)$`)

// uncachedSteps returns the COPY and RUN steps of a plain progress log
// that ran instead of coming from the cache.
func uncachedSteps(log string) []string {
	names := map[string]string{}
	cached := map[string]bool{}
	var order []string
	for _, m := range vertexLine.FindAllStringSubmatch(log, -1) {
		if m[2] == "CACHED" {
			cached[m[1]] = true
		} else if _, ok := names[m[1]]; !ok {
			names[m[1]] = m[2]
			order = append(order, m[1])
		}
	}
	var out []string
	for _, id := range order {
		if !cached[id] {
			out = append(out, names[id])
		}
	}
	return out
}

// checkNoDangling fails when ROOT holds snapshots no record or container
// uses, snapshot directories the snapshotter does not know, or blobs that
// neither a stored image nor a record references.
func checkNoDangling(t *testing.T, root string) {
	t.Helper()
	r, err := state.Open(root, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	store, err := r.Cache()
	if err != nil {
		t.Fatal(err)
	}
	sn, err := r.Snapshots()
	if err != nil {
		t.Fatal(err)
	}
	parents := map[string]string{}
	sn.Walk(context.Background(), func(i snapshot.Info) error { parents[i.Name] = i.Parent; return nil })
	dirs, _ := os.ReadDir(filepath.Join(root, "snapshots", "snapshots"))
	if len(dirs) != len(parents) {
		t.Errorf("%d snapshot directories for %d snapshots", len(dirs), len(parents))
	}
	used := map[string]bool{}
	useChain := func(n string) {
		for ; n != ""; n = parents[n] {
			used[n] = true
		}
	}
	blobs := map[digest.Digest]bool{}
	store.Metadata().Walk(func(id string, data json.RawMessage) error {
		var r struct {
			Snapshot    string
			Layer       *cache.Layer
			ImageLayers []cache.Layer
		}
		json.Unmarshal(data, &r)
		useChain(r.Snapshot)
		if r.Layer != nil {
			blobs[r.Layer.Digest] = true
		}
		for _, l := range r.ImageLayers {
			blobs[l.Digest] = true
		}
		if h, ok := strings.CutPrefix(id, "image-"); ok {
			blobs[digest.NewDigestFromEncoded(digest.Canonical, h)] = true
		}
		return nil
	})
	ctrs, _ := openContainers(t, root).List()
	for _, c := range ctrs {
		useChain(c.Snapshot)
	}
	for n := range parents {
		if !used[n] {
			t.Errorf("dangling snapshot %s", n)
		}
	}
	images, err := r.Images()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := images.Referenced()
	if err != nil {
		t.Fatal(err)
	}
	store.Blobs().Walk(func(d digest.Digest, _ int64) error {
		if !ref[d] && !blobs[d] {
			// An image record's config is kept with its manifest.
			raw, _ := os.ReadFile(store.Blobs().Path(d))
			if !bytes.Contains(raw, []byte(`"rootfs"`)) {
				t.Errorf("dangling blob %s", d)
			}
		}
		return nil
	})
}

// TestPruneEndToEnd builds twice with different content, prunes the
// dangling cache (the latest build stays cached, both images run), then
// everything (images and containers still run, the next build runs its
// steps again), checking that no snapshot or blob is left dangling and that
// a build waits for a prune holding the root.
func TestPruneEndToEnd(t *testing.T) {
	requireRootOverlay(t)
	host := registrytest.NewInProcess(t)
	registrytest.PushBusybox(t, host+"/busybox:latest")

	root, dir := filepath.Join(t.TempDir(), "root"), t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+host+"/busybox:latest\nCOPY a.txt /a.txt\nRUN --mount=type=cache,target=/c cp /a.txt /c/last && cat /a.txt > /b.txt\nRUN echo built >> /b.txt\n"), 0o644)
	build := func(content, tag string) string {
		t.Helper()
		os.WriteFile(filepath.Join(dir, "a.txt"), []byte(content), 0o644)
		var out bytes.Buffer
		if err := Build(context.Background(), BuildOptions{ContextDir: dir, Tags: []string{tag}, Progress: "plain", Root: root}, &out); err != nil {
			t.Fatalf("build %s: %v\n%s", tag, err, out.String())
		}
		return out.String()
	}
	prune := func(o PruneOptions) string {
		t.Helper()
		o.Root, o.Force = root, true
		var out bytes.Buffer
		if err := Prune(context.Background(), o, nil, &out); err != nil {
			t.Fatalf("prune %+v: %v", o, err)
		}
		if !strings.Contains(out.String(), "Total reclaimed space: ") {
			t.Errorf("prune output has no total:\n%s", out.String())
		}
		return out.String()
	}
	runCat := func(image, want string) {
		t.Helper()
		code, stdout, stderr := runForTest(t, RunOptions{Image: image, Args: []string{"cat", "/b.txt"}, Root: root, Remove: true, Pull: "never"})
		if code != 0 || stdout != want {
			t.Errorf("run %s: exit %d, %q (stderr %s), want %q", image, code, stdout, stderr, want)
		}
	}

	build("one\n", "app:1")
	build("two\n", "app:2")
	// A stopped container keeps its filesystem through every prune.
	if code, _, _ := runForTest(t, RunOptions{Image: "app:1", Args: []string{"sh", "-c", "echo kept > /kept"}, Root: root, Name: "keeper", Pull: "never"}); code != 0 {
		t.Fatalf("run keeper: exit %d", code)
	}
	checkNoDangling(t, root)

	out := prune(PruneOptions{})
	if !strings.Contains(out, "Deleted build cache objects:") {
		t.Errorf("prune removed nothing of the first build:\n%s", out)
	}
	checkNoDangling(t, root)
	if again := prune(PruneOptions{}); strings.Contains(again, "Deleted") || !strings.Contains(again, "Total reclaimed space: 0B") {
		t.Errorf("second prune removed more:\n%s", again)
	}
	if ran := uncachedSteps(build("two\n", "app:2")); len(ran) != 0 {
		t.Errorf("after prune the latest build ran %v, want every step cached", ran)
	}
	runCat("app:1", "one\nbuilt\n")
	runCat("app:2", "two\nbuilt\n")

	// A build waits while prune holds the root.
	held, err := state.Open(root, state.Options{Lock: state.LockExclusive, NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string)
	go func() {
		os.WriteFile(filepath.Join(dir, "a.txt"), []byte("two\n"), 0o644)
		var out bytes.Buffer
		Build(context.Background(), BuildOptions{ContextDir: dir, Progress: "plain", Root: root}, &out)
		done <- out.String()
	}()
	select {
	case <-done:
		t.Error("a build ran while prune held the root")
	case <-time.After(300 * time.Millisecond):
	}
	held.Close()
	<-done

	prune(PruneOptions{All: true})
	checkNoDangling(t, root)
	if ents, _ := os.ReadDir(filepath.Join(root, "cache-mounts")); len(ents) != 0 {
		t.Errorf("cache mounts left after prune --all: %v", ents)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "cache", "meta")); len(ents) != 0 {
		t.Errorf("records left after prune --all: %d", len(ents))
	}
	if c, err := openContainers(t, root).Find("keeper"); err != nil {
		t.Errorf("container keeper: %v", err)
	} else if sn, err := snapshot.New(filepath.Join(root, "snapshots")); err != nil {
		t.Fatal(err)
	} else {
		if _, err := sn.Stat(context.Background(), c.Snapshot); err != nil {
			t.Errorf("container keeper's snapshot after prune --all: %v", err)
		}
		sn.Close()
	}
	runCat("app:1", "one\nbuilt\n")
	runCat("app:2", "two\nbuilt\n")
	ran := uncachedSteps(build("two\n", "app:2"))
	if len(ran) != 3 {
		t.Errorf("after prune --all the build ran %v, want its 3 COPY/RUN steps", ran)
	}
	if err := RemoveContainers(context.Background(), root, []string{"keeper"}, false, io.Discard); err != nil {
		t.Fatalf("rm keeper: %v", err)
	}
	prune(PruneOptions{All: true})
	checkNoDangling(t, root)
}
