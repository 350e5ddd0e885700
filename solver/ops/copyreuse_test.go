package ops

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops/internal/fileop"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func newOverlayWorker(t *testing.T) *Worker {
	w, _ := newOverlayWorkerStore(t)
	return w
}

func newOverlayWorkerStore(t *testing.T) (*Worker, *cache.Store) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for overlay mounts")
	}
	dir := t.TempDir()
	sn, err := snapshot.NewNamed(filepath.Join(dir, "snapshots"), "overlay")
	if err != nil {
		t.Skipf("no overlay snapshotter: %v", err)
	}
	t.Cleanup(func() { sn.Close() })
	store, err := cache.Open(filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Snapshotter: sn, Blobs: store.Blobs(), Meta: store.Metadata(), StateDir: filepath.Join(dir, "state")}), store
}

// upperInode is the inode of path p in the upper dir of result r.
func upperInode(t *testing.T, w *Worker, r solver.Result, p string) uint64 {
	t.Helper()
	ctx := context.Background()
	name, err := snapshotName(r)
	if err != nil {
		t.Fatal(err)
	}
	view := newID("view-")
	m, err := w.opt.Snapshotter.View(ctx, view, name)
	if err != nil {
		t.Fatal(err)
	}
	defer w.opt.Snapshotter.Remove(ctx, view)
	dir, ok := treeDir(m, false)
	if !ok {
		t.Fatalf("no tree dir in %v", m)
	}
	fi, err := os.Lstat(filepath.Join(dir, p))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestCopyReusesPreviousResult: a COPY of a context after one file changed
// starts from the previous result on the same parent (unchanged files are
// the same inodes), and gives the tree and layer entries of a fresh copy.
func TestCopyReusesPreviousResult(t *testing.T) {
	ctx := context.Background()
	w, store := newOverlayWorkerStore(t)
	fresh := newOverlayWorker(t)
	src := t.TempDir()
	for p, data := range map[string]string{"a/one": "1", "a/two": "2", "b/three": "3", "top": "t"} {
		must(t, os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755))
		must(t, os.WriteFile(filepath.Join(src, p), []byte(data), 0o644))
	}
	time.Sleep(10 * time.Millisecond)
	defer func(old time.Duration) { fileop.SetRacyWindow(old) }(fileop.SetRacyWindow(0))

	baseV := fileVertex("base", -1, nil, llb.FileAction{Mkdir: &llb.Mkdir{Path: "/etc", Mode: 0o755}})
	copyV := fileVertex("COPY . /app", 0, []*llb.Vertex{baseV, nil}, llb.FileAction{Copy: &llb.Copy{
		Src: 1, SrcPaths: []string{"."}, Dest: "/app", FollowSymlinks: true, DirContentsOnly: true,
		AllowWildcard: true, AllowEmptyWildcard: true, CreateDestPath: true,
	}})
	local := &localResult{in: fileop.Input{Root: src, Local: true}}
	base := execVertex(t, w, baseV)
	first := execVertex(t, w, copyV, base, local)
	time.Sleep(10 * time.Millisecond)

	must(t, os.WriteFile(filepath.Join(src, "a/two"), []byte("changed"), 0o644))
	must(t, os.RemoveAll(filepath.Join(src, "b")))
	must(t, os.WriteFile(filepath.Join(src, "added"), []byte("new"), 0o600))
	second := execVertex(t, w, copyV, base, local)

	if upperInode(t, w, first, "app/a/one") != upperInode(t, w, second, "app/a/one") {
		t.Error("an unchanged file was copied again, not reused")
	}
	if upperInode(t, w, first, "app/a/two") == upperInode(t, w, second, "app/a/two") {
		t.Error("a changed file was reused")
	}
	got := readTree(t, w, second)
	want := readTree(t, fresh, execVertex(t, fresh, copyV, execVertex(t, fresh, baseV), local))
	for _, made := range []string{"app", "etc"} { // made at different times
		delete(got, made)
		delete(want, made)
	}
	if len(got) != len(want) {
		t.Errorf("reused tree has %d entries, a fresh copy %d:\n%v\n%v", len(got), len(want), got, want)
	}
	for p, fw := range want {
		if g, ok := got[p]; !ok || g.data != fw.data || g.mode != fw.mode || !g.mtime.Equal(fw.mtime) {
			t.Errorf("%s: reused %+v, fresh %+v", p, got[p], fw)
		}
	}
	if _, _, err := w.Image(ctx, second, v1.ConfigFile{}); err != nil {
		t.Fatal(err)
	}

	// A prune takes the reuse record for no result and drops it.
	rep, err := Prune(ctx, store, w.opt.Snapshotter, PruneOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range rep.Results {
		if strings.HasPrefix(id, copyReusePrefix) {
			t.Errorf("prune reports the reuse record %s as a result", id)
		}
	}
	var rr copyReuseRecord
	if err := store.Metadata().Get(copyReuseID(copyV.Digest().String(), refRecord(base).Snapshot), &rr); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("reuse record after prune --all: %v, want not found", err)
	}
}
