package main

import (
	"encoding/json"
	"io"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/internal/fsutil"
)

// writeIIDFile writes the image ID as docker build --iidfile does.
func writeIIDFile(path string, res *build.Result) error {
	return fsutil.WriteOutputFunc(path, func(w io.Writer) error {
		_, err := io.WriteString(w, res.ImageID.String())
		return err
	})
}

// writeJSONFile writes v as indented JSON to path.
func writeJSONFile(path string, v any) error {
	return fsutil.WriteOutputFunc(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}
