package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestProgressDefault(t *testing.T) {
	for _, tt := range []struct{ builder, buildkit, want string }{
		{"", "", "auto"},
		{"", "plain", "plain"},
		{"rawjson", "plain", "rawjson"},
	} {
		t.Setenv("BUILDER_PROGRESS", tt.builder)
		t.Setenv("BUILDKIT_PROGRESS", tt.buildkit)
		for _, cmd := range []string{"build", "push"} {
			c := map[string]func() *cobra.Command{"build": newBuildCommand, "push": newPushCommand}[cmd]()
			if got := c.Flags().Lookup("progress").DefValue; got != tt.want {
				t.Errorf("BUILDER_PROGRESS=%q BUILDKIT_PROGRESS=%q: %s --progress defaults to %q, want %q", tt.builder, tt.buildkit, cmd, got, tt.want)
			}
		}
	}
}

// TestBuildQuietAndRawJSON: -q prints only the image ID (on stdout);
// --progress=rawjson prints one JSON object per event.
func TestBuildQuietAndRawJSON(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN echo hi\n"})
	root := t.TempDir()
	var stdout, stderr bytes.Buffer
	iid := filepath.Join(t.TempDir(), "iid")
	o := BuildOptions{ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs, Progress: "quiet", Quiet: true, Stdout: &stdout, IIDFile: iid}
	if err := Build(context.Background(), o, &stderr); err != nil {
		t.Fatalf("build -q: %v\n%s", err, stderr.String())
	}
	id, _ := os.ReadFile(iid)
	if want := string(id) + "\n"; len(id) == 0 || stdout.String() != want || stderr.Len() != 0 {
		t.Errorf("build -q: stdout %q (want %q), stderr %q", stdout.String(), want, stderr.String())
	}

	stdout.Reset()
	o = BuildOptions{ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs, Progress: "rawjson", NoCache: true, Stdout: &stdout}
	if err := Build(context.Background(), o, &stderr); err != nil {
		t.Fatalf("build --progress=rawjson: %v\n%s", err, stderr.String())
	}
	sawRun, sawLog := false, false
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var ev struct {
			Vertexes []struct {
				Name      string `json:"name"`
				Completed string `json:"completed"`
			} `json:"vertexes"`
			Logs []struct {
				Data []byte `json:"data"`
			} `json:"logs"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("rawjson line %q: %v", l, err)
		}
		for _, v := range ev.Vertexes {
			sawRun = sawRun || (strings.Contains(v.Name, "RUN echo hi") && v.Completed != "")
		}
		for _, lg := range ev.Logs {
			sawLog = sawLog || string(lg.Data) == "hi\n"
		}
	}
	if !sawRun || !sawLog {
		t.Errorf("rawjson lacks the RUN (%v) or its output (%v):\n%s", sawRun, sawLog, stderr.String())
	}

	// -q with an archive on stdout is refused before the build.
	cmd := newBuildCommand()
	if _, err := cliOut(t, cmd, "--root", root, "-q", "-o", "-", ctxDir); err == nil || !strings.Contains(err.Error(), "--quiet") {
		t.Errorf("-q -o -: %v", err)
	}
}
