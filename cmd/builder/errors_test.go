package main

// The errors suite builds every case in testdata/errors through Build and
// compares the whole user-visible error report (the Dockerfile lines
// around the failing instruction, hints, the last output lines of a failed
// RUN and the ERROR line) with error.txt:
//
//	testdata/errors/<case>/
//	  Dockerfile   passed with -f
//	  context/     optional build context
//	  args.txt     optional: K=V build args, "--target=x", "--platform=p"
//	  error.txt    the expected report
//
// BASE is the busybox image in an in-process registry; the registry's
// address and digests are replaced by REGISTRY and sha256:DIGEST before the
// comparison. Run with -update to rewrite error.txt after checking the
// output by hand.

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const errorsDir = "../../testdata/errors"

var (
	digestRe    = regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	reportStart = regexp.MustCompile(`(?m)^(?:[^#\s][^:\s]*:\d+$|ERROR: )`)
)

// errorReport is the part of a build's output that reports its failure.
func errorReport(out string) string {
	loc := reportStart.FindStringIndex(out)
	if loc == nil {
		return ""
	}
	return out[loc[0]:]
}

func TestErrorMessages(t *testing.T) {
	requireRootOverlay(t)
	dirs, err := filepath.Glob(filepath.Join(errorsDir, "*", "Dockerfile"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases in %s: %v", errorsDir, err)
	}
	env := newGoldenEnv(t)
	host := strings.SplitN(env.baseArgs["BASE"], "/", 2)[0]
	root := t.TempDir()
	for _, df := range dirs {
		dir := filepath.Dir(df)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			o := BuildOptions{
				Dockerfile: df,
				BuildArgs:  map[string]string{},
				Progress:   "plain",
				Root:       root,
				Call:       "build",
				Outputs:    []Output{{Type: "oci", Dest: filepath.Join(t.TempDir(), "out.tar"), Attrs: map[string]string{}}},
			}
			for k, v := range env.baseArgs {
				o.BuildArgs[k] = v
			}
			if data, err := os.ReadFile(filepath.Join(dir, "args.txt")); err == nil {
				for _, line := range strings.Split(string(data), "\n") {
					line = strings.TrimSpace(line)
					switch {
					case line == "" || strings.HasPrefix(line, "#"):
					case strings.HasPrefix(line, "--target="):
						o.Target = strings.TrimPrefix(line, "--target=")
					case strings.HasPrefix(line, "--platform="):
						o.Platform = strings.TrimPrefix(line, "--platform=")
					default:
						k, v, _ := strings.Cut(line, "=")
						o.BuildArgs[k] = v
					}
				}
			}
			o.ContextDir = t.TempDir()
			if _, err := os.Stat(filepath.Join(dir, "context")); err == nil {
				copyContext(t, filepath.Join(dir, "context"), o.ContextDir)
			} else if !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			var out, stdout bytes.Buffer
			o.Stdout = &stdout
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			err := Build(ctx, o, &out)
			if err == nil {
				t.Fatalf("build succeeded; output:\n%s", out.String())
			}
			got := errorReport(out.String())
			got = strings.ReplaceAll(got, host, "REGISTRY")
			got = strings.ReplaceAll(got, o.ContextDir, "CONTEXT")
			got = digestRe.ReplaceAllString(got, "sha256:DIGEST")
			if got == "" {
				t.Fatalf("no error report in the output:\n%s", out.String())
			}
			compareGolden(t, filepath.Join(dir, "error.txt"), got)
		})
	}
}

func TestErrorReport(t *testing.T) {
	out := "#1 [internal] load\n#1 ERROR: x\nDockerfile:3\n----\nERROR: failed\n"
	if got, want := errorReport(out), "Dockerfile:3\n----\nERROR: failed\n"; got != want {
		t.Errorf("errorReport = %q, want %q", got, want)
	}
	if got, want := errorReport("#1 DONE\nERROR: failed to build: x\n"), "ERROR: failed to build: x\n"; got != want {
		t.Errorf("errorReport = %q, want %q", got, want)
	}
}
