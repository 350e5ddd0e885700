package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/internal/pty"
)

// checkStdoutOutputs refuses more than one output streaming to stdout,
// and any when stdout is a terminal (an archive would garble it), before
// the build starts.
func checkStdoutOutputs(outs []Output, stdout io.Writer) error {
	n := 0
	for _, o := range outs {
		if o.Dest == build.StdoutDest {
			n++
		}
	}
	switch {
	case n > 1:
		return errors.New("--output: only one output can stream to stdout (dest=-)")
	case n == 1:
		if f, ok := stdout.(*os.File); ok && pty.IsTerminal(int(f.Fd())) {
			return errors.New("--output: refusing to write an archive to a terminal (dest=-): redirect stdout to a file or a pipe")
		}
	}
	return nil
}

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

// writeFile writes an output file through fsutil.WriteFileAtomicFunc, so a
// failed export never leaves a truncated file; outputs are world-readable.
func writeFile(path string, fn func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomicFunc(path, 0o644, fn)
}
