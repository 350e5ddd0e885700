package dockerfile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// ParseIgnore reads a .dockerignore file into patterns: comments (lines
// starting with #) and blank lines are dropped, surrounding spaces trimmed,
// patterns cleaned and made relative (a leading "/" is dropped), and a leading
// "!" (an exception) is kept. The result is what LocalOp.ExcludePatterns
// expects, the same as Docker's ignorefile.ReadAll.
func ParseIgnore(r io.Reader) ([]string, error) {
	var patterns []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	first := true
	for sc.Scan() {
		line := sc.Bytes()
		if first {
			line = bytes.TrimPrefix(line, []byte{0xEF, 0xBB, 0xBF})
			first = false
		}
		p := string(line)
		if strings.HasPrefix(p, "#") {
			continue
		}
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		invert := p[0] == '!'
		if invert {
			p = strings.TrimSpace(p[1:])
		}
		if p != "" {
			p = filepath.ToSlash(filepath.Clean(p))
			if len(p) > 1 && p[0] == '/' {
				p = p[1:]
			}
		}
		if invert {
			p = "!" + p
		}
		patterns = append(patterns, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading .dockerignore: %w", err)
	}
	return patterns, nil
}
