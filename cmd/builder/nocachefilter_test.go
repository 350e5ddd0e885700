package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoCacheFilter: --no-cache-filter re-runs the steps of the named
// stages (and what is built on their new results), never the stages they
// are built on; an unknown stage is an error naming it.
func TestNoCacheFilter(t *testing.T) {
	requireRootE2E(t)
	root := filepath.Join(t.TempDir(), "root")
	dir := busyboxContext(t) // FROM scratch (stage 0): COPY busybox
	df := "FROM scratch AS base\nCOPY busybox /bin/busybox\nSHELL [\"/bin/busybox\", \"sh\", \"-c\"]\nRUN cat /proc/sys/kernel/random/uuid > /id-base\n" +
		"FROM base AS mid\nRUN cat /proc/sys/kernel/random/uuid > /id-mid\n" +
		"FROM scratch AS other\nCOPY busybox /bb\n" +
		"FROM mid AS final\nCOPY --from=other /bb /bb\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	build := func(filter ...string) (string, error) {
		var out bytes.Buffer
		err := Build(context.Background(), BuildOptions{ContextDir: dir, Progress: "plain", Root: root, NoCacheFilter: filter}, &out)
		return out.String(), err
	}
	if out, err := build(); err != nil {
		t.Fatalf("first build: %v\n%s", err, out)
	}
	out, err := build("MID")
	if err != nil {
		t.Fatalf("--no-cache-filter MID: %v\n%s", err, out)
	}
	ran := strings.Join(uncachedSteps(out), "\n")
	// mid's step runs again, and so does what is built on it.
	for _, want := range []string{"[mid 1/1] RUN", "[final 1/1] COPY"} {
		if !strings.Contains(ran, want) {
			t.Errorf("--no-cache-filter mid did not re-run %s; ran:\n%s", want, ran)
		}
	}
	for _, cached := range []string{"[base 2/2] RUN", "[other 1/1] COPY", "[base 1/2] COPY"} {
		if strings.Contains(ran, cached) {
			t.Errorf("--no-cache-filter mid re-ran %s; ran:\n%s", cached, ran)
		}
	}
	out, err = build("base,other")
	if err != nil {
		t.Fatalf("--no-cache-filter base,other: %v\n%s", err, out)
	}
	ran = strings.Join(uncachedSteps(out), "\n")
	for _, want := range []string{"[base 2/2] RUN", "[other 1/1] COPY"} {
		if !strings.Contains(ran, want) {
			t.Errorf("--no-cache-filter base,other did not re-run %s; ran:\n%s", want, ran)
		}
	}
	if out, err := build("nope"); err == nil || !strings.Contains(out, `stage "nope" could not be found`) {
		t.Errorf("unknown stage: %v\n%s", err, out)
	}
}
