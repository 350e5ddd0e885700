package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/cache"
	digest "github.com/opencontainers/go-digest"
)

// TestDU builds into a root and checks builder du: every kind is listed,
// the cache mount and the snapshots are reclaimable, --verbose lists the
// items, and --verify fails naming a blob whose bytes were changed.
func TestDU(t *testing.T) {
	requireRootE2E(t)
	root := filepath.Join(t.TempDir(), "root")
	ctxDir := busyboxContext(t, "RUN --mount=type=cache,target=/c echo x > /c/f && echo hi > /hi")
	var out bytes.Buffer
	if err := Build(context.Background(), BuildOptions{ContextDir: ctxDir, Progress: "plain", Root: root}, &out); err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	du := func(o DUOptions) (string, error) {
		t.Helper()
		o.Root = root
		var b bytes.Buffer
		err := DU(context.Background(), o, &b)
		return b.String(), err
	}
	got, err := du(DUOptions{})
	if err != nil {
		t.Fatalf("du: %v\n%s", err, got)
	}
	for _, want := range []string{"TYPE ", "Base image layers ", "Build results ", "Local images ", "Snapshots ", "Cache mounts ", "Total "} {
		if !strings.Contains(got, want) {
			t.Errorf("du output has no %q:\n%s", want, got)
		}
	}
	for _, l := range strings.Split(got, "\n") {
		f := strings.Fields(l)
		if strings.HasPrefix(l, "Cache mounts") && (len(f) < 5 || f[2] != "1" || f[3] == "0B" || f[3] != f[4]) {
			t.Errorf("one cache mount, all reclaimable: %q", l)
		}
		if strings.HasPrefix(l, "Build results") && (len(f) < 4 || f[2] == "0") {
			t.Errorf("no build results: %q", l)
		}
	}
	if got, _ := du(DUOptions{Verbose: true}); !strings.Contains(got, "ID ") || !strings.Contains(got, "LAST USED") {
		t.Errorf("du --verbose lists no items:\n%s", got)
	}
	if got, err := du(DUOptions{Verify: true}); err != nil || !strings.Contains(got, "0 corrupt") {
		t.Fatalf("du --verify on a good root: %v\n%s", err, got)
	}
	// Change the bytes of the largest blob, keeping its size.
	blobs, err := cache.OpenBlobStore(filepath.Join(root, "cache", "content"))
	if err != nil {
		t.Fatal(err)
	}
	var big digest.Digest
	var bigSize int64
	blobs.Walk(func(d digest.Digest, n int64) error {
		if n > bigSize {
			big, bigSize = d, n
		}
		return nil
	})
	p := blobs.Path(big)
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0xff
	os.Chmod(p, 0o600)
	os.WriteFile(p, b, 0o444)
	got, err = du(DUOptions{Verify: true})
	var ee *exitError
	if !errors.As(err, &ee) || !strings.Contains(got, big.String()) {
		t.Errorf("du --verify with a corrupt blob: err %v, output:\n%s", err, got)
	}
	// The next build notices the damage and still succeeds.
	out.Reset()
	if err := Build(context.Background(), BuildOptions{ContextDir: ctxDir, Progress: "plain", Root: root}, &out); err != nil {
		t.Fatalf("build after a blob was corrupted: %v\n%s", err, out.String())
	}
}
