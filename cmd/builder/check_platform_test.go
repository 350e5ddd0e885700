package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/frontend/dockerfile"
	"github.com/builderdev/builder/llb"
)

// TestCheckInvalidBaseImagePlatform: --check --platform linux/arm64 on a
// base image that only exists for linux/amd64 reports BuildKit's
// InvalidBaseImagePlatform with the FROM line.
func TestCheckInvalidBaseImagePlatform(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	dir := t.TempDir()
	df := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(df, []byte("ARG BASE=scratch\nFROM $BASE\nCMD [\"sh\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := map[string]string{}
	for k, v := range env.baseArgs {
		args[k] = v
	}
	check := func(platform string) (string, error) {
		var stdout, progress bytes.Buffer
		err := Build(context.Background(), BuildOptions{
			ContextDir: t.TempDir(), Dockerfile: df, BuildArgs: args, Progress: "plain",
			Root: t.TempDir(), Call: "check", Platform: platform, Stdout: &stdout,
		}, &progress)
		return stdout.String(), err
	}
	out, err := check("linux/arm64")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("--check: %v\n%s", err, out)
	}
	want := "WARNING: InvalidBaseImagePlatform\nBase image " + args["BASE"] + ` was pulled with platform "linux/amd64", expected "linux/arm64" for current build` + "\nDockerfile:2\n"
	if !strings.Contains(out, want) {
		t.Errorf("--check output:\n%s\nwant it to contain:\n%s", out, want)
	}
	if out, err := check("linux/amd64"); err != nil || strings.Contains(out, "InvalidBaseImagePlatform") {
		t.Errorf("--check on the image's platform: %v\n%s", err, out)
	}
}

// TestSortWarnings: --check prints warnings by line, as BuildKit's lint
// printer sorts them (issue 10 #15).
func TestSortWarnings(t *testing.T) {
	ws := []dockerfile.Warning{
		{Rule: "B", Location: llb.Location{Line: 7}},
		{Rule: "A", Location: llb.Location{Line: 3}},
		{Rule: "Z"},
		{Rule: "C", Location: llb.Location{Line: 3}},
	}
	var got []string
	for _, w := range dockerfile.SortWarnings(ws) {
		got = append(got, w.Rule)
	}
	if strings.Join(got, "") != "ZACB" {
		t.Errorf("order %v, want Z A C B", got)
	}
}
