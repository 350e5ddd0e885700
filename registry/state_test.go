package registry

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/builderdev/builder/cache"
	"github.com/google/go-containerregistry/pkg/name"
	digest "github.com/opencontainers/go-digest"
)

// TestRecordBlobSourcesConcurrent: clients sharing a state directory (as
// concurrent builds do) record sources of the same blobs at once; every
// record ends up naming one whole repository and no temp file stays.
func TestRecordBlobSourcesConcurrent(t *testing.T) {
	t.Parallel()
	blobs, err := cache.OpenBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	var ds []digest.Digest
	for i := range 4 {
		ds = append(ds, digest.FromString(fmt.Sprint("blob", i)))
	}
	repos := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 8 {
		// Names of different lengths, so that a write torn by another shows.
		repo, err := name.NewRepository(fmt.Sprintf("registry.example/%0*d", 1+w*7, w))
		if err != nil {
			t.Fatal(err)
		}
		repos[repo.Name()] = true
		c := New(Options{Blobs: blobs, StateDir: state})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				c.recordBlobSources(repo, ds)
			}
		}()
	}
	wg.Wait()

	c := New(Options{Blobs: blobs, StateDir: state})
	for _, d := range ds {
		src, ok := c.storedSource(d)
		if !ok {
			t.Fatalf("no source recorded for %s", d)
		}
		if !repos[src.Name()] {
			t.Errorf("source of %s is %q, not one of the recorded repositories", d, src.Name())
		}
	}
	entries, err := os.ReadDir(filepath.Join(state, "sources"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(ds) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("sources holds %v, want only the %d records", names, len(ds))
	}
}
