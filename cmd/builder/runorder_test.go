package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestRunOutputOrder checks that a RUN's stdout and stderr lines reach the
// progress, and the last lines of a failed step, in the order the process
// wrote them.
func TestRunOutputOrder(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\n" +
		"RUN for i in 1 2 3 4 5 6 7 8; do echo out$i; echo err$i >&2; done; exit 3\n"})
	var progress bytes.Buffer
	err := Build(context.Background(), BuildOptions{ContextDir: ctxDir, Root: t.TempDir(), BuildArgs: env.baseArgs, Progress: "plain"}, &progress)
	if err == nil {
		t.Fatalf("the build did not fail:\n%s", progress.String())
	}
	var want []string
	for i := 1; i <= 8; i++ {
		want = append(want, "out"+string(rune('0'+i)), "err"+string(rune('0'+i)))
	}
	// The step's progress lines: "#N 0.123 out1".
	logged := regexp.MustCompile(`(?m)^#\d+ [0-9.]+ ((?:out|err)\d)$`).FindAllStringSubmatch(progress.String(), -1)
	var got []string
	for _, m := range logged {
		got = append(got, m[1])
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("progress lines %v, want %v:\n%s", got, want, progress.String())
	}
	_, tail, ok := strings.Cut(progress.String(), "last output lines:\n")
	if !ok {
		t.Fatalf("no last output lines:\n%s", progress.String())
	}
	got = nil
	for _, l := range strings.Split(tail, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "out") || strings.HasPrefix(l, "err") {
			got = append(got, l)
		}
	}
	if len(got) == 0 || strings.Join(got, " ") != strings.Join(want[len(want)-len(got):], " ") {
		t.Errorf("last output lines %v, want the end of %v", got, want)
	}
}
