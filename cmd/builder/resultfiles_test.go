package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/build"
	"golang.org/x/sys/unix"
)

// TestResultFilesBeforeTheBuild: an old --iidfile is gone once a build
// starts, so a failed build leaves none (as buildx); an output or a
// result file that could not be written at the end fails the build
// before it runs a step, naming the path the user gave.
func TestResultFilesBeforeTheBuild(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN echo ran && false\n"})
	dir := t.TempDir()
	iid := filepath.Join(dir, "iid")
	if err := os.WriteFile(iid, []byte("sha256:stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	aDir := filepath.Join(dir, "adir")
	aFile := filepath.Join(dir, "afile")
	writeFiles(t, dir, map[string]string{"adir/x": "", "afile": ""})
	base := BuildOptions{ContextDir: ctxDir, Root: t.TempDir(), BuildArgs: env.baseArgs, Progress: "plain"}

	var progress bytes.Buffer
	o := base
	o.IIDFile = iid
	if err := Build(context.Background(), o, &progress); err == nil {
		t.Fatal("the failing build succeeded")
	}
	if _, err := os.Lstat(iid); !os.IsNotExist(err) {
		t.Errorf("the old --iidfile is still there after a failed build (%v)", err)
	}

	for _, tc := range []struct {
		name string
		set  func(*BuildOptions)
		want string
	}{
		{"oci dest is a directory", func(o *BuildOptions) { o.Outputs = mustOutputs(t, "type=oci,dest="+aDir) }, aDir + " is a directory"},
		{"tar dest under a file", func(o *BuildOptions) { o.Outputs = mustOutputs(t, "type=tar,dest="+filepath.Join(aFile, "fs.tar")) }, aFile + " is not a directory"},
		{"local dest is a file", func(o *BuildOptions) { o.Outputs = mustOutputs(t, "type=local,dest="+aFile) }, aFile + " exists and is not a directory"},
		{"metadata file is a directory", func(o *BuildOptions) { o.MetadataFile = aDir }, "--metadata-file: " + aDir + " is a directory"},
		{"report under a file", func(o *BuildOptions) { o.Report = filepath.Join(aFile, "r.html") }, "--report: " + filepath.Join(aFile, "r.html")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.set(&o)
			var progress bytes.Buffer
			err := Build(context.Background(), o, &progress)
			if err == nil {
				t.Fatal("the build succeeded")
			}
			// The message is the error's, or printed with the progress.
			if msg := err.Error() + progress.String(); !strings.Contains(msg, tc.want) || strings.Contains(msg, ".tmp-") {
				t.Errorf("error %v, want %q:\n%s", err, tc.want, progress.String())
			}
			if strings.Contains(progress.String(), "echo ran") {
				t.Errorf("the build ran before failing:\n%s", progress.String())
			}
		})
	}
}

func mustOutputs(t *testing.T, specs ...string) []Output {
	t.Helper()
	outs, err := build.ParseOutputSpecs(specs)
	if err != nil {
		t.Fatal(err)
	}
	return outs
}

// TestOldIIDFileOnlyRegular: only a regular old --iidfile is removed; a
// link, FIFO or device (--iidfile /dev/null) is left to be written
// through.
func TestOldIIDFileOnlyRegular(t *testing.T) {
	dir := t.TempDir()
	regular, link, fifo := filepath.Join(dir, "iid"), filepath.Join(dir, "link"), filepath.Join(dir, "fifo")
	writeFiles(t, dir, map[string]string{"iid": "sha256:stale", "target": "sha256:stale"})
	if err := os.Symlink("target", link); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{regular, link, fifo} {
		if err := prepareResultFiles(BuildOptions{IIDFile: p}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Lstat(regular); !os.IsNotExist(err) {
		t.Errorf("the regular old --iidfile is still there (%v)", err)
	}
	for _, p := range []string{link, fifo} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
}
