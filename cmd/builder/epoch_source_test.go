package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// epochServer serves /src.tar: a tar of one file foo with modification
// time mtime, with an ETag and, when lastModified is set, that
// Last-Modified (BuildKit's httpserver.Response of the tests below).
func epochServer(t *testing.T, mtime time.Time, lastModified *time.Time) *httptest.Server {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "foo", Mode: 0o644, Size: 3, ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("bar")); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	body := buf.Bytes()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/src.tar" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", fmt.Sprintf(`"%s"`, t.Name()))
		if lastModified != nil {
			w.Header().Set("Last-Modified", lastModified.UTC().Format(http.TimeFormat))
		}
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// checkEpochImage checks what BuildKit's tests check of an image built
// with rewrite-timestamp at epoch: the created time, every entry of the
// last layer at most epoch (builder does not write BuildKit's
// buildkit/rewritten-timestamp annotation) and, when epochFile, the file
// /epoch of that layer holding the epoch in seconds.
func checkEpochImage(t *testing.T, img v1.Image, epoch time.Time, epochFile bool) {
	t.Helper()
	found := false
	walkEpochImage(t, img, epoch, func(hdr *tar.Header, r io.Reader) {
		if hdr.ModTime.After(epoch) {
			t.Errorf("%s has mtime %v, after the epoch %v", hdr.Name, hdr.ModTime, epoch)
		}
		if hdr.Name == "epoch" {
			found = true
			var b bytes.Buffer
			_, _ = b.ReadFrom(r)
			if got, want := b.String(), fmt.Sprint(epoch.Unix()); got != want {
				t.Errorf("/epoch = %q, want %q", got, want)
			}
		}
	})
	if epochFile && !found {
		t.Errorf("no /epoch in the last layer")
	}
}

// walkEpochImage checks that img was created at epoch and calls fn for
// each entry of its last layer, with the entry's content.
func walkEpochImage(t *testing.T, img v1.Image, epoch time.Time, fn func(hdr *tar.Header, r io.Reader)) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !cf.Created.Time.Equal(epoch) {
		t.Errorf("created %v, want %v", cf.Created.Time, epoch)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err != nil {
			return
		}
		fn(hdr, tr)
	}
}

// TestSourceDateEpochOfSource ports BuildKit's testSourceDateEpochStage*
// and testSourceDateEpochNamedContextHTTP* (dockerfile_source_date_epoch_
// test.go): SOURCE_DATE_EPOCH names a source-only stage or a named
// context, and the epoch is its source's Last-Modified or else the newest
// file time of its tar; an explicit --build-arg wins.
func TestSourceDateEpochOfSource(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	lastModified := time.Unix(1700000601, 0).UTC()
	for _, tc := range []struct {
		name         string
		df           string // %[1]s is the server's URL
		mtime        time.Time
		lastModified *time.Time
		arg          string // --build-arg SOURCE_DATE_EPOCH
		named        bool   // --build-context mysource=URL/src.tar
		want         time.Time
		epochFile    bool
	}{
		{name: "StageHTTPArchive", mtime: time.Unix(1700000402, 0),
			df:   "ARG SOURCE_DATE_EPOCH=mysource\nARG BASE\nFROM scratch AS mysource\nADD %[1]s/src.tar /\nFROM $BASE\nARG SOURCE_DATE_EPOCH\nRUN echo -n \"$SOURCE_DATE_EPOCH\" >/epoch\n",
			want: time.Unix(1700000402, 0).UTC(), epochFile: true},
		{name: "StageOverride", mtime: time.Unix(1700000501, 0), arg: "1700000502",
			df:   "ARG SOURCE_DATE_EPOCH=mysource\nFROM scratch AS mysource\nADD %[1]s/src.tar /\nFROM scratch\nCOPY Dockerfile .\n",
			want: time.Unix(1700000502, 0).UTC()},
		{name: "NamedContextHTTPLastModified", mtime: lastModified.Add(time.Hour), lastModified: &lastModified, named: true,
			df:   "ARG SOURCE_DATE_EPOCH=mysource\nFROM scratch\nCOPY Dockerfile .\n",
			want: lastModified},
		{name: "NamedContextHTTPArchive", mtime: time.Unix(1700000602, 0), named: true,
			df:   "ARG SOURCE_DATE_EPOCH=mysource\nARG BASE\nFROM $BASE\nARG SOURCE_DATE_EPOCH\nRUN echo -n \"$SOURCE_DATE_EPOCH\" >/epoch\n",
			want: time.Unix(1700000602, 0).UTC(), epochFile: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := epochServer(t, tc.mtime, tc.lastModified)
			df := strings.ReplaceAll(tc.df, "%[1]s", srv.URL)
			_, data := env.buildDockerfile(t, df, t.TempDir(), func(o *BuildOptions) {
				delete(o.BuildArgs, "SOURCE_DATE_EPOCH")
				if tc.arg != "" {
					o.BuildArgs["SOURCE_DATE_EPOCH"] = tc.arg
				}
				if tc.named {
					o.BuildContexts = []string{"mysource=" + srv.URL + "/src.tar"}
				}
				o.Outputs[0].Attrs["rewrite-timestamp"] = "true"
				// COPY Dockerfile: the context holds a copy of it.
				writeContextDockerfile(t, o.ContextDir, df)
			})
			checkEpochImage(t, ociImage(t, data), tc.want, tc.epochFile)
		})
	}
}

// writeContextDockerfile puts df into the context as Dockerfile.
func writeContextDockerfile(t *testing.T, dir, df string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHTTPNamedContext: --build-context NAME=http(s)://URL is a stage
// whose filesystem holds the download as /context (BuildKit's dockerui
// named context of an HTTP URL), for FROM and COPY --from alike.
func TestHTTPNamedContext(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	srv := epochServer(t, time.Unix(1700000000, 0), nil)
	df := "FROM scratch\nCOPY --from=web /context /copied.tar\n"
	_, data := env.buildDockerfile(t, df, t.TempDir(), func(o *BuildOptions) {
		o.BuildContexts = []string{"web=" + srv.URL + "/src.tar"}
	})
	img := ociImage(t, data)
	_, hdr := fileInImage(t, img, "copied.tar")
	if hdr == nil || hdr.Size != 2048 {
		t.Fatalf("copied.tar: %+v, want the 2048-byte tar the server sends", hdr)
	}
}
