package ops

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"
	"time"
)

func TestClampTimestamps(t *testing.T) {
	t.Parallel()
	epoch := time.Unix(1700000000, 0).UTC()
	before := epoch.Add(-time.Hour)
	after := epoch.Add(time.Hour)
	entries := []struct {
		hdr  tar.Header
		data string
		want time.Time
	}{
		{tar.Header{Name: "old", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: before, Format: tar.FormatPAX}, "old data", before},
		{tar.Header{Name: "new", Typeflag: tar.TypeReg, Mode: 0o755, ModTime: after, AccessTime: after, ChangeTime: after, Format: tar.FormatPAX,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "caps"}}, "new data", epoch},
		{tar.Header{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: after, Format: tar.FormatPAX}, "", epoch},
		{tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "new", ModTime: epoch, Format: tar.FormatPAX}, "", epoch},
	}
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	for _, e := range entries {
		h := e.hdr
		h.Size = int64(len(e.data))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := ClampTimestamps(&out, bytes.NewReader(in.Bytes()), epoch); err != nil {
		t.Fatal(err)
	}
	rewritten := out.Bytes()
	tr := tar.NewReader(bytes.NewReader(rewritten))
	for _, e := range entries {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: %v", e.hdr.Name, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name != e.hdr.Name || string(data) != e.data || hdr.Mode != e.hdr.Mode || hdr.Linkname != e.hdr.Linkname {
			t.Errorf("%s: got %s %q mode %o link %q", e.hdr.Name, hdr.Name, data, hdr.Mode, hdr.Linkname)
		}
		if !hdr.ModTime.Equal(e.want) {
			t.Errorf("%s: mtime %v, want %v", e.hdr.Name, hdr.ModTime, e.want)
		}
		if hdr.AccessTime.After(epoch) || hdr.ChangeTime.After(epoch) {
			t.Errorf("%s: atime %v ctime %v after the epoch", e.hdr.Name, hdr.AccessTime, hdr.ChangeTime)
		}
		if v, ok := e.hdr.PAXRecords["SCHILY.xattr.security.capability"]; ok && hdr.PAXRecords["SCHILY.xattr.security.capability"] != v {
			t.Errorf("%s: xattr lost: %v", e.hdr.Name, hdr.PAXRecords)
		}
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("extra entries: %v", err)
	}
	// Deterministic: the same input gives the same bytes.
	var again bytes.Buffer
	if err := ClampTimestamps(&again, bytes.NewReader(in.Bytes()), epoch); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rewritten, again.Bytes()) {
		t.Error("two rewrites of the same tar differ")
	}
	if err := ClampTimestamps(io.Discard, bytes.NewReader([]byte("not a tar stream, definitely not 512 bytes")), epoch); err == nil {
		t.Error("a corrupt tar was accepted")
	}
}
