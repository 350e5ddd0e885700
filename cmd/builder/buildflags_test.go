package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestBuildNetworkNone checks builder build --network none: every RUN that
// does not ask for another network (RUN --network=default included) gets
// its own network namespace with only lo, as in docker build.
func TestBuildNetworkNone(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	ctxDir := t.TempDir()
	const list = `tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' '`
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": `ARG BASE
FROM $BASE
RUN ` + list + ` > /plain
RUN --network=default ` + list + ` > /default
`})
	opts := BuildOptions{ContextDir: ctxDir, Root: t.TempDir(), BuildArgs: env.baseArgs}
	opts.Sandbox.Network = "none"
	img, progress, _, err := e2eBuild(t, opts)
	if err != nil {
		t.Fatalf("build: %v\nprogress:\n%s", err, progress)
	}
	files := imageFiles(t, img)
	for _, f := range []string{"plain", "default"} {
		if got := strings.TrimSpace(files[f]); got != "lo" {
			t.Errorf("with --network none, RUN sees %q in /%s, want only lo", got, f)
		}
	}

	// The same build with the default network is a different step.
	opts.Sandbox.Network = ""
	img, progress, _, err = e2eBuild(t, opts)
	if err != nil {
		t.Fatalf("build: %v\nprogress:\n%s", err, progress)
	}
	if got := strings.TrimSpace(imageFiles(t, img)["plain"]); got == "lo" {
		t.Errorf("with the default network RUN sees only %q: the --network none result was reused", got)
	}
}

// TestBuildInvalidTagBeforeWork checks that a bad -t is refused before
// the build starts: nothing is created under --root.
func TestBuildInvalidTagBeforeWork(t *testing.T) {
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "FROM scratch\nCOPY Dockerfile /\n"})
	for _, tag := range []string{"../x", "a//b", "Upper:1", "x:"} {
		root := filepath.Join(t.TempDir(), "root")
		cmd := newBuildCommand()
		cmd.SetArgs([]string{"--root", root, "-t", "ok:1", "-t", tag, ctxDir})
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("invalid tag %q: invalid reference format", tag)) {
			t.Errorf("-t %s: %v, want an invalid tag error", tag, err)
		}
		if _, err := os.Stat(root); !os.IsNotExist(err) {
			t.Errorf("-t %s: the root was created before the tag was checked (%v)", tag, err)
		}
	}
}

// TestBuildAnnotationAndLoad: --annotation reaches the manifest of the
// OCI output and of the stored image; --load is accepted (the image is in
// the local store, as after every build).
func TestBuildAnnotationAndLoad(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nCOPY Dockerfile /\n"})
	root := t.TempDir()
	out := filepath.Join(t.TempDir(), "img.tar")
	if msg, err := cliOut(t, newBuildCommand(), "--root", root, "--build-arg", "BASE="+env.baseArgs["BASE"], "--progress=plain",
		"--annotation", "org.opencontainers.image.source=https://example.com/x", "--annotation", "manifest:team=a",
		"--load", "-t", "annotated:1", "-o", "type=oci,dest="+out, ctxDir); err != nil {
		t.Fatalf("build: %v\n%s", err, msg)
	}
	img, err := readOCITar(t, out)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	if m.Annotations["org.opencontainers.image.source"] != "https://example.com/x" || m.Annotations["team"] != "a" {
		t.Errorf("oci output manifest annotations %v", m.Annotations)
	}
	msg, err := cliOut(t, newInspectCommand(), "--root", root, "--format", "{{json .Manifest.annotations}}", "annotated:1")
	if err != nil || !strings.Contains(msg, `"team":"a"`) {
		t.Errorf("stored manifest annotations: %v %s", err, msg)
	}
}

// TestBuildAddHostShmUlimit: --add-host, --shm-size and --ulimit reach
// every RUN and are part of its cache key, as in BuildKit.
func TestBuildAddHostShmUlimit(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\n" +
		`RUN grep db /etc/hosts; df -k /dev/shm | tail -n 1 | awk '{print "shm", $2}'; echo "nofile $(ulimit -n):$(ulimit -Hn)"` + "\n"})
	root := t.TempDir()
	build := func(flags ...string) string {
		t.Helper()
		// The sandbox flags as build parses them.
		o := BuildOptions{ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs, Progress: "plain"}
		cmd := &cobra.Command{Use: "x"}
		sf := addSandboxFlags(cmd, &o.Sandbox)
		if err := cmd.ParseFlags(flags); err != nil {
			t.Fatal(err)
		}
		if err := sf.parse(); err != nil {
			t.Fatal(err)
		}
		var progress bytes.Buffer
		if err := Build(context.Background(), o, &progress); err != nil {
			t.Fatalf("build %v: %v\n%s", flags, err, progress.String())
		}
		return progress.String()
	}
	out := build("--add-host", "db:10.9.8.7", "--shm-size", "32m", "--ulimit", "nofile=512:1024")
	for _, want := range []string{"10.9.8.7\tdb", "shm 32768", "nofile 512:1024"} {
		if !strings.Contains(out, want) {
			t.Errorf("RUN output lacks %q:\n%s", want, out)
		}
	}
	if out := build("--add-host", "db:10.9.8.7", "--shm-size", "32m", "--ulimit", "nofile=512:1024"); !strings.Contains(out, "CACHED") {
		t.Errorf("the same flags ran the RUN again:\n%s", out)
	}
	if out := build("--add-host", "db:10.9.8.6", "--shm-size", "32m", "--ulimit", "nofile=512:1024"); !strings.Contains(out, "10.9.8.6\tdb") {
		t.Errorf("another --add-host reused the cache:\n%s", out)
	}
	for _, bad := range [][]string{{"--add-host", "db"}, {"--ulimit", "nofiles=1"}, {"--shm-size", "lots"}} {
		cmd := newBuildCommand()
		if _, err := cliOut(t, cmd, append(append([]string{"--root", root}, bad...), ctxDir)...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
