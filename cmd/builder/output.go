package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

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

// prepareResultFiles checks before the build that --iidfile,
// --metadata-file and --report can be written at its end, and removes an
// old --iidfile, as buildx does: a script must not read a stale image ID
// after a failed build.
func prepareResultFiles(o BuildOptions) error {
	for _, f := range []struct{ flag, path string }{{"--iidfile", o.IIDFile}, {"--metadata-file", o.MetadataFile}, {"--report", o.Report}} {
		if f.path == "" {
			continue
		}
		if err := fsutil.CheckOutputFile(f.path); err != nil {
			return fmt.Errorf("%s: %w", f.flag, err)
		}
	}
	// Only a regular file: --iidfile /dev/null (or a link) is written
	// through at the end, never removed.
	if fi, err := os.Lstat(o.IIDFile); o.IIDFile != "" && err == nil && fi.Mode().IsRegular() {
		if err := os.Remove(o.IIDFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--iidfile: removing the old image ID file: %w", err)
		}
	}
	return nil
}
