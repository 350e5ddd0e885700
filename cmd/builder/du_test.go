package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/registrytest"
	"github.com/builderdev/builder/solver/ops"
	"github.com/builderdev/builder/state"
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

// TestAutoGC: a build that leaves the root over --gc-limit removes the
// least recently used cache and says how much it freed; while another
// process holds the root it collects nothing and says so.
func TestAutoGC(t *testing.T) {
	requireRootE2E(t)
	root := filepath.Join(t.TempDir(), "root")
	ctxDir := busyboxContext(t, "COPY a.txt /a.txt", "RUN cat /a.txt /bin/busybox > /big")
	build := func(content, limit string) string {
		t.Helper()
		os.WriteFile(filepath.Join(ctxDir, "a.txt"), []byte(content), 0o644)
		var out bytes.Buffer
		if err := Build(context.Background(), BuildOptions{ContextDir: ctxDir, Progress: "plain", Root: root, GCLimit: limit}, &out); err != nil {
			t.Fatalf("build %q: %v\n%s", content, err, out.String())
		}
		return out.String()
	}
	for _, c := range []string{"one", "two", "three"} {
		if out := build(c, "0"); strings.Contains(out, "[gc]") {
			t.Fatalf("--gc-limit 0 collected:\n%s", out)
		}
	}
	before, _ := ops.DiskUsage(root)
	limit := before * 2 / 3
	// Another process uses the root: nothing is collected.
	other, err := state.Open(root, state.Options{Lock: state.LockShared})
	if err != nil {
		t.Fatal(err)
	}
	out := build("three", fmt.Sprint(limit))
	other.Close()
	if !strings.Contains(out, "[gc]") || !strings.Contains(out, "skipped: another builder process") {
		t.Errorf("GC while another process holds the root:\n%s", out)
	}
	if now, _ := ops.DiskUsage(root); now < before*9/10 {
		t.Errorf("GC removed %d bytes while another process held the root", before-now)
	}
	out = build("three", fmt.Sprint(limit))
	if !strings.Contains(out, "[gc] state root") || !strings.Contains(out, "freed ") {
		t.Fatalf("no GC over the limit:\n%s", out)
	}
	after, _ := ops.DiskUsage(root)
	if after >= before {
		t.Errorf("root %d bytes before GC, %d after", before, after)
	}
	// The most recently used build stays cached.
	if ran := uncachedSteps(build("three", "0")); len(ran) != 0 {
		t.Errorf("after GC the latest build ran %v, want it cached", ran)
	}
}

// TestCorruptBlobsRefetched flips a byte in every blob of a root built
// from a registry image (base layers, config, manifest, step layers):
// the next build, with -o type=local, pulls what it needs again and
// rebuilds the rest, and exports the right files.
func TestCorruptBlobsRefetched(t *testing.T) {
	requireRootOverlay(t)
	host := registrytest.NewInProcess(t)
	registrytest.PushBusybox(t, host+"/busybox:latest")
	root, dir := filepath.Join(t.TempDir(), "root"), t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+host+"/busybox:latest\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("content\n"), 0o644)
	build := func() string {
		t.Helper()
		dest := t.TempDir()
		var out bytes.Buffer
		if err := Build(context.Background(), BuildOptions{ContextDir: dir, Progress: "plain", Root: root, Outputs: []Output{{Type: "local", Dest: dest}}}, &out); err != nil {
			t.Fatalf("build: %v\n%s", err, out.String())
		}
		if b, err := os.ReadFile(filepath.Join(dest, "b.txt")); err != nil || string(b) != "content\n" {
			t.Fatalf("/b.txt = %q, %v\n%s", b, err, out.String())
		}
		if _, err := os.Stat(filepath.Join(dest, "bin", "busybox")); err != nil {
			t.Fatalf("base image files missing: %v", err)
		}
		return out.String()
	}
	build()
	blobs, err := cache.OpenBlobStore(filepath.Join(root, "cache", "content"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	blobs.Walk(func(d digest.Digest, size int64) error {
		p := blobs.Path(d)
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 0x20
		os.Chmod(p, 0o600)
		os.WriteFile(p, b, 0o444)
		n++
		return nil
	})
	if n < 4 {
		t.Fatalf("only %d blobs to corrupt", n)
	}
	out := build()
	if !strings.Contains(out, "missing or damaged") {
		t.Errorf("the build did not report the damaged blobs:\n%s", out)
	}
	if bad, err := blobs.VerifyAll(nil); err != nil || len(bad) > 0 {
		t.Errorf("corrupt blobs left after the build: %v, %v", bad, err)
	}
}
