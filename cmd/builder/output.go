package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/internal/fsutil"
)

// writeIIDFile writes the image ID as docker build --iidfile does.
func writeIIDFile(path string, res *build.Result) error {
	return writeFile(path, func(w io.Writer) error {
		_, err := io.WriteString(w, res.ImageID.String())
		return err
	})
}

// writeJSONFile writes v as indented JSON to path.
func writeJSONFile(path string, v any) error {
	return writeFile(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

// writeFile writes an output file through fsutil.ReplaceFileFunc, so a
// failed export never leaves a truncated file; outputs are world-readable.
func writeFile(path string, fn func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fsutil.ReplaceFileFunc(path, 0o644, fn)
}
