package exporter

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/builderdev/builder/internal/fsutil"
)

// layoutSink receives the entries of an OCI image layout: a tar stream or
// a directory.
type layoutSink interface {
	dir(name string) error
	// file writes name of size bytes with mode; fill writes the content.
	file(name string, size int64, mode os.FileMode, fill func(io.Writer) error) error
}

// tarSink writes layout entries into a tar stream with fixed times.
type tarSink struct{ tw *tar.Writer }

func (s *tarSink) dir(name string) error {
	return s.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: tarEpoch, Format: tar.FormatPAX})
}

func (s *tarSink) file(name string, size int64, mode os.FileMode, fill func(io.Writer) error) error {
	if err := s.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(mode), Size: size, ModTime: tarEpoch, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := fill(s.tw); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// dirSink writes layout entries as files under root. Blobs are immutable:
// one that exists with the right size is kept; every file is written
// through a temp file and renamed, so readers never see a partial one.
// The temp files an export killed mid-write left in root and in the
// directories it makes are removed (fsutil.RemoveDeadTemps): the next
// export may never write those blobs again.
type dirSink struct{ root string }

// newDirSink makes root (when missing) and returns its sink.
func newDirSink(root string) (*dirSink, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", root, err)
	}
	fsutil.RemoveDeadTemps(root)
	return &dirSink{root: root}, nil
}

func (s *dirSink) dir(name string) error {
	p := filepath.Join(s.root, filepath.FromSlash(name))
	if err := os.MkdirAll(p, 0o755); err != nil {
		return err
	}
	fsutil.RemoveDeadTemps(p)
	return nil
}

func (s *dirSink) file(name string, size int64, mode os.FileMode, fill func(io.Writer) error) error {
	p := filepath.Join(s.root, filepath.FromSlash(name))
	if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && fi.Size() == size && filepath.Dir(filepath.Dir(name)) == "blobs" {
		return nil
	}
	return fsutil.WriteFileAtomicFunc(p, mode, fill)
}

// writeLayoutEntries writes blobs/, the blobs in order, index.json and
// oci-layout, sorted by name like containerd's archive exporter.
func writeLayoutEntries(ctx context.Context, sink layoutSink, img *Image, sorted []blobEntry, rawIndex []byte) error {
	if err := sink.dir("blobs/"); err != nil {
		return err
	}
	if err := sink.dir("blobs/sha256/"); err != nil {
		return err
	}
	for _, b := range sorted {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := "blobs/sha256/" + b.digest.Hex
		fill := bytesFill(b.data)
		if b.layer {
			fill = func(w io.Writer) error { return copyBlob(ctx, w, img, b) }
		}
		err := sink.file(p, b.size, 0o444, fill)
		if err != nil {
			return err
		}
	}
	if err := sink.file("index.json", int64(len(rawIndex)), 0o644, bytesFill(rawIndex)); err != nil {
		return err
	}
	layout := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	return sink.file("oci-layout", int64(len(layout)), 0o444, bytesFill(layout))
}

func bytesFill(b []byte) func(io.Writer) error {
	return func(w io.Writer) error { _, err := w.Write(b); return err }
}
