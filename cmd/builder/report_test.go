package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/builderdev/builder/report"
)

// TestBuildReport builds with --report and --metadata-file: the page has
// a row per step with the RUN's cgroup stats, the critical path and the
// image's layers; builder report makes the same page from the metadata;
// a failed build still writes its report, with the failed step.
func TestBuildReport(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN echo hi > /hi\nCOPY f /f\n", "f": "x",
		"fail.Dockerfile": "ARG BASE\nFROM $BASE\nRUN exit 3\n"})
	dir := t.TempDir()
	page, meta := filepath.Join(dir, "r.html"), filepath.Join(dir, "meta.json")
	args := map[string]string{"TYPO": "1"}
	for k, v := range env.baseArgs {
		args[k] = v
	}
	o := BuildOptions{ContextDir: ctxDir, Root: t.TempDir(), BuildArgs: args, Progress: "plain", Tags: []string{"app:1"},
		Report: page, MetadataFile: meta}
	var progress bytes.Buffer
	if err := Build(context.Background(), o, &progress); err != nil {
		t.Fatalf("build: %v\n%s", err, progress.String())
	}
	// BASE_DIGEST is not declared either.
	if !strings.Contains(progress.String(), "One or more build-args [BASE_DIGEST TYPO] were not consumed") {
		t.Errorf("no warning about the unused build args:\n%s", progress.String())
	}
	// The pull shows each layer's bytes and its extraction.
	if !regexp.MustCompile(`(?m)^#\d+ [0-9.]+ sha256:[0-9a-f]{64} [0-9.]+[kMG]?B / [0-9.]+[kMG]?B [0-9.]+s done$`).MatchString(progress.String()) ||
		!regexp.MustCompile(`(?m)^#\d+ [0-9.]+ extracting sha256:[0-9a-f]{64} [0-9.]+s done$`).MatchString(progress.String()) {
		t.Errorf("no pull progress:\n%s", progress.String())
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(meta)
	b, err := report.ReadMetadata(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(html), `class="tl-row step-row`); n != len(b.Steps) || n < 5 {
		t.Errorf("%d timeline rows for %d steps", n, len(b.Steps))
	}
	var run *report.Step
	for i := range b.Steps {
		if strings.Contains(b.Steps[i].Name, "RUN echo hi") {
			run = &b.Steps[i]
		}
	}
	if run == nil || run.Stats == nil || run.Started.IsZero() || len(run.Inputs) == 0 || run.CacheMiss == "" {
		t.Errorf("RUN step in the metadata: %+v", run)
	}
	if b.Image == nil || len(b.Image.Layers) < 2 || b.Image.Layers[len(b.Image.Layers)-1].CreatedBy != "COPY f /f # buildkit" || b.Traffic.PulledBytes <= 0 {
		t.Errorf("image %+v traffic %+v", b.Image, b.Traffic)
	}
	for _, want := range []string{"RUN echo hi &gt; /hi", `data-critical="true"`, "COPY f /f # buildkit", "docker.io/library/app:1"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	var raw map[string]any
	if json.Unmarshal(data, &raw); raw["containerimage.digest"] == nil {
		t.Errorf("metadata lost buildx's keys: %v", raw)
	}

	again := filepath.Join(dir, "again.html")
	if err := writeReportFromMetadata(meta, again, nil); err != nil {
		t.Fatal(err)
	}
	if a, _ := os.ReadFile(again); !bytes.Equal(a, html) {
		t.Error("builder report of the metadata differs from --report")
	}

	failed := filepath.Join(dir, "failed.html")
	o.Dockerfile, o.Report, o.MetadataFile = filepath.Join(ctxDir, "fail.Dockerfile"), failed, ""
	if err := Build(context.Background(), o, &progress); err == nil {
		t.Fatal("the failing build succeeded")
	}
	if html, err := os.ReadFile(failed); err != nil || !strings.Contains(string(html), `data-state="failed"`) || !strings.Contains(string(html), "exit code: 3") {
		t.Errorf("report of the failed build: %v\n%.3000s", err, html)
	}
}
