package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/builderdev/builder/exporter/imagestore"
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

// TestPushNoSuchImage: pushing a name the store does not have says so
// once, in docker push's words: the repository when none of its tags is
// stored, the tag when others are.
func TestPushNoSuchImage(t *testing.T) {
	requireRootOverlay(t)
	root := t.TempDir()
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "FROM scratch\nCOPY f /f\n", "f": "x"})
	var progress bytes.Buffer
	if err := Build(context.Background(), BuildOptions{ContextDir: ctxDir, Root: root, Progress: "plain", Tags: []string{"have:1"}}, &progress); err != nil {
		t.Fatalf("build: %v\n%s", err, progress.String())
	}
	for _, tc := range []struct{ src, want string }{
		{"nosuch:img", "An image does not exist locally with the tag: nosuch"},
		{"nosuch", "An image does not exist locally with the tag: nosuch"},
		{"127.0.0.1:5300/me/nosuch:2", "An image does not exist locally with the tag: 127.0.0.1:5300/me/nosuch"},
		{"have:2", "tag does not exist: have:2"},
	} {
		var out, stdout bytes.Buffer
		err := Push(context.Background(), root, "plain", RegistryFlags{}, tc.src, nil, &out, &stdout)
		if err == nil || err.Error() != tc.want {
			t.Errorf("push %s: %v, want %q", tc.src, err, tc.want)
		}
		if !errors.Is(err, imagestore.ErrNotFound) {
			t.Errorf("push %s: the error is not ErrNotFound", tc.src)
		}
	}
}
