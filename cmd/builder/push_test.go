package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/registrytest"
	"github.com/google/go-containerregistry/pkg/crane"
)

// TestPushOutput: build --push shows one push step per name, and builder
// push prints "DEST: digest: sha256:... size: N" on stdout for every
// destination, with the digest the registry serves.
func TestPushOutput(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	host := registrytest.NewInProcess(t)
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nCOPY f /f\n", "f": "x"})
	root := t.TempDir()
	names := []string{host + "/app:1", host + "/app:2"}
	var progress bytes.Buffer
	o := BuildOptions{ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs, Progress: "plain", Tags: names,
		Outputs: []Output{{Type: "image", Attrs: map[string]string{"push": "true"}}}}
	if err := Build(context.Background(), o, &progress); err != nil {
		t.Fatalf("build --push: %v\n%s", err, progress.String())
	}
	steps := regexp.MustCompile(`(?m)^#\d+ (pushing.*)$`).FindAllStringSubmatch(progress.String(), -1)
	seen := map[string]bool{}
	for _, m := range steps {
		seen[m[1]] = true
	}
	if len(seen) != len(names) {
		t.Errorf("push steps %v, want one per name %v:\n%s", seen, names, progress.String())
	}
	for _, n := range names {
		if !seen["pushing layers and manifest to "+n] {
			t.Errorf("no push step for %s: %v", n, seen)
		}
	}

	dests := []string{host + "/copy:a", host + "/other/copy:b"}
	var out, stdout bytes.Buffer
	if err := Push(context.Background(), root, "plain", RegistryFlags{}, names[0], dests, &out, &stdout); err != nil {
		t.Fatalf("push: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != len(dests) {
		t.Fatalf("push stdout %q, want one line per destination", stdout.String())
	}
	for i, d := range dests {
		dg, err := crane.Digest(d, crane.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		m, err := crane.Manifest(d, crane.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%s: digest: %s size: %d", d, dg, len(m)); lines[i] != want {
			t.Errorf("push stdout line %q, want %q", lines[i], want)
		}
	}
	if strings.Contains(out.String(), "digest: sha256") {
		t.Errorf("the result went to the progress output too:\n%s", out.String())
	}
}
