package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/builderdev/builder/frontend/dockerfile"
	"github.com/builderdev/builder/llb"
)

// printCheck prints the build-check warnings as `docker build --check`
// does: rule and URL, the finding, the Dockerfile lines it is about; then
// a summary. It returns an exitError when there is any warning.
func printCheck(out io.Writer, dfPath string, df []byte, warnings []dockerfile.Warning) error {
	warnings = dockerfile.SortWarnings(warnings)
	for _, w := range warnings {
		fmt.Fprintf(out, "\nWARNING: %s", w.Rule)
		if w.URL != "" {
			fmt.Fprintf(out, " - %s", w.URL)
		}
		fmt.Fprintf(out, "\n%s\n", w.Message)
		printSource(out, dfPath, df, w.Location)
	}
	switch len(warnings) {
	case 0:
		fmt.Fprintln(out, "Check complete, no warnings found.")
		return nil
	case 1:
		fmt.Fprintln(out, "\nCheck complete, 1 warning has been found!")
	default:
		fmt.Fprintf(out, "\nCheck complete, %d warnings have been found!\n", len(warnings))
	}
	return &exitError{code: 1}
}

// printSource prints the Dockerfile lines of loc with two lines of context,
// marking loc's lines with ">>>", as BuildKit prints errors and warnings.
func printSource(out io.Writer, dfPath string, df []byte, loc llb.Location) {
	if loc.Line <= 0 {
		return
	}
	lines := strings.Split(string(df), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	end := max(loc.EndLine, loc.Line)
	fmt.Fprintf(out, "%s:%d\n--------------------\n", filepath.Base(dfPath), loc.Line)
	for i := max(1, loc.Line-2); i <= min(len(lines), end+2); i++ {
		mark := "    "
		if i >= loc.Line && i <= end {
			mark = ">>> "
		}
		fmt.Fprintf(out, "%4d | %s%s\n", i, mark, lines[i-1])
	}
	fmt.Fprintln(out, "--------------------")
}
