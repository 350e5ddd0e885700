package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCallGolden runs `build --call check|targets|outline` on every case of
// testdata/call and compares the printed text with check.txt, targets.txt
// and outline.txt (each only when present). args.txt holds K=V build args.
// The Dockerfiles use FROM scratch, so nothing is resolved or pulled. Run
// with -update to rewrite the files, after comparing with buildx's output.
func TestCallGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/call/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases in testdata/call: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			args := map[string]string{}
			if data, err := os.ReadFile(filepath.Join(dir, "args.txt")); err == nil {
				for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
					k, v, _ := strings.Cut(l, "=")
					args[k] = v
				}
			} else if !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			ran := 0
			for _, call := range []string{"check", "targets", "outline"} {
				want := filepath.Join(dir, call+".txt")
				if _, err := os.Stat(want); err != nil && !*update {
					continue
				}
				ran++
				var stdout, progress bytes.Buffer
				err := Build(context.Background(), BuildOptions{
					ContextDir: t.TempDir(),
					Dockerfile: filepath.Join(dir, "Dockerfile"),
					BuildArgs:  args,
					Progress:   "plain",
					Root:       t.TempDir(),
					Call:       call,
					Stdout:     &stdout,
				}, &progress)
				var ee *exitError
				switch {
				case err == nil:
				case errors.As(err, &ee) && call == "check" && ee.code == 1:
					// --check exits 1 when it found warnings.
					if !strings.Contains(stdout.String(), "Check complete, ") || strings.Contains(stdout.String(), "no warnings found") {
						t.Errorf("--check failed without warnings: %v\n%s", err, stdout.String())
					}
				default:
					t.Fatalf("--call %s: %v\n%s", call, err, progress.String())
				}
				compareGolden(t, want, stdout.String())
			}
			if ran == 0 {
				t.Fatalf("%s has no check.txt, targets.txt or outline.txt", dir)
			}
		})
	}
}
