package main

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// noEpochWarning is BuildKit's warning for rewrite-timestamp=true without
// SOURCE_DATE_EPOCH.
const noEpochWarning = "rewrite-timestamp is specified, but no source-date-epoch was found"

// TestRewriteTimestampWithoutEpochWarns: the build succeeds and its
// progress ends with BuildKit's warning, once.
func TestRewriteTimestampWithoutEpochWarns(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	progress, _ := env.buildDockerfile(t, "ARG BASE\nFROM $BASE\nRUN echo hi > /hi\n", t.TempDir(), func(o *BuildOptions) {
		delete(o.BuildArgs, "SOURCE_DATE_EPOCH")
		o.Outputs[0].Attrs["rewrite-timestamp"] = "true"
	})
	if !strings.Contains(progress, "\n - "+noEpochWarning+"\n") || strings.Count(progress, noEpochWarning) != 1 {
		t.Errorf("no rewrite-timestamp warning in the progress:\n%s", progress)
	}
}

// TestSourceDateEpochDockerfileDefault: ARG SOURCE_DATE_EPOCH=... before
// FROM is the build's epoch (BuildKit's testSourceDateEpochDockerfileDefault):
// the image's created time, and the mtime of the directories WORKDIR
// creates, so two builds give the same digest.
func TestSourceDateEpochDockerfileDefault(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	df := "ARG SOURCE_DATE_EPOCH=1445412480\nARG BASE\nFROM $BASE\nWORKDIR /a/b\n"
	epoch := time.Unix(1445412480, 0).UTC()
	var digests []v1.Hash
	for i := 0; i < 2; i++ {
		_, data := env.buildDockerfile(t, df, t.TempDir(), func(o *BuildOptions) {
			delete(o.BuildArgs, "SOURCE_DATE_EPOCH")
		})
		img := ociImage(t, data)
		n := 0
		walkEpochImage(t, img, epoch, func(hdr *tar.Header, _ io.Reader) {
			n++
			if !hdr.ModTime.Equal(epoch) {
				t.Errorf("WORKDIR layer: %s has mtime %v, want %v", hdr.Name, hdr.ModTime, epoch)
			}
		})
		if n != 2 {
			t.Errorf("WORKDIR layer has %d entries, want a/ and a/b/", n)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds at the same SOURCE_DATE_EPOCH differ: %s, %s", digests[0], digests[1])
	}
}

// TestSourceDateEpochWithoutExporter is BuildKit's
// testSourceDateEpochWithoutExporter: --build-arg SOURCE_DATE_EPOCH alone
// (no exporter option) sets the image's created time and that of every
// history entry.
func TestSourceDateEpochWithoutExporter(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	tm := time.Unix(1700000001, 0).UTC()
	df := "FROM scratch\nENTRYPOINT foo bar\nCOPY Dockerfile .\n"
	_, data := env.buildDockerfile(t, df, t.TempDir(), func(o *BuildOptions) {
		o.BuildArgs["SOURCE_DATE_EPOCH"] = "1700000001"
		o.Dockerfile = filepath.Join(o.ContextDir, "Dockerfile")
		if err := os.WriteFile(o.Dockerfile, []byte(df), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	cf, err := ociImage(t, data).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !cf.Created.Time.Equal(tm) {
		t.Errorf("created %v, want %v", cf.Created.Time, tm)
	}
	if len(cf.History) != 2 {
		t.Errorf("%d history entries, want 2 (ENTRYPOINT, COPY)", len(cf.History))
	}
	for i, h := range cf.History {
		if !h.Created.Time.Equal(tm) {
			t.Errorf("history %d (%s): created %v, want %v", i, h.CreatedBy, h.Created.Time, tm)
		}
	}
}
