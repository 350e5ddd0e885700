package buildtest

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ExtractTar extracts the tar at path, which holds only directories and
// regular files (as an OCI layout tarball), into dir and returns the
// headers of its entries in order. An entry that would land outside dir,
// or of another type, is an error.
func ExtractTar(path, dir string) ([]*tar.Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var hdrs []*tar.Header
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return hdrs, nil
		}
		if err != nil {
			return nil, err
		}
		hdrs = append(hdrs, hdr)
		name := filepath.Clean(hdr.Name)
		if !filepath.IsLocal(name) {
			return nil, fmt.Errorf("entry %q escapes the layout", hdr.Name)
		}
		target := filepath.Join(dir, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return nil, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return nil, err
			}
			w, err := os.Create(target)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(w, tr)
			w.Close()
			if err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("entry %q: unexpected type %q in an OCI layout", hdr.Name, hdr.Typeflag)
		}
	}
}
