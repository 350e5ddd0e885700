package fsutil

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestPatternMatcher(t *testing.T) {
	t.Parallel()
	tests := []struct {
		patterns []string
		path     string
		want     bool
	}{
		{[]string{"*.go"}, "main.go", true},
		{[]string{"*.go"}, "dir/main.go", false},
		{[]string{"**/*.go"}, "dir/sub/main.go", true},
		{[]string{"**/*.go"}, "main.go", true},
		{[]string{"dir/**"}, "dir/a/b", true},
		{[]string{"dir/**/x"}, "dir/x", true},
		{[]string{"dir/**/x"}, "dir/a/b/x", true},
		{[]string{"node_modules"}, "node_modules/pkg/index.js", true},
		{[]string{"/node_modules/"}, "node_modules/pkg/index.js", true},
		{[]string{"./a/../b"}, "b/c", true},
		{[]string{"a?c"}, "abc", true},
		{[]string{"a?c"}, "a/c", false},
		{[]string{"[a-c]x"}, "bx", true},
		{[]string{"[^a-c]x"}, "dx", true},
		{[]string{"[!a-c]x"}, "ax", false},
		{[]string{`\*`}, "*", true},
		{[]string{`\*`}, "a", false},
		{[]string{"a+b(c)"}, "a+b(c)", true},
		{[]string{"*", "!keep"}, "keep", false},
		{[]string{"*", "!keep"}, "other", true},
		{[]string{"*", "!keep", "keep"}, "keep", true},
		{[]string{"dir", "!dir/keep"}, "dir/keep/file", false},
		{[]string{"dir", "!dir/keep"}, "dir/other", true},
		{[]string{"  # comment"}, "# comment", false},
		{[]string{"*.md", "!README.md"}, "README.md", false},
		{[]string{"*.md", "!README.md"}, "sub/x.md", false},
		{[]string{""}, "x", false},
	}
	for _, tc := range tests {
		pm, err := NewPatternMatcher(tc.patterns)
		if err != nil {
			t.Fatalf("%v: %v", tc.patterns, err)
		}
		if got := pm.MatchesOrParentMatches(tc.path); got != tc.want {
			t.Errorf("%v matches %q = %v, want %v", tc.patterns, tc.path, got, tc.want)
		}
	}
}

func TestPatternMatcherErrors(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"!", "[abc", `abc\`} {
		if _, err := NewPatternMatcher([]string{p}); err == nil {
			t.Errorf("pattern %q: no error", p)
		}
	}
}

func TestExceptionMayMatchUnder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		patterns []string
		dir      string
		want     bool
	}{
		{[]string{"dir"}, "dir", false},
		{[]string{"dir", "!dir/a/b"}, "dir", true},
		{[]string{"dir", "!dir/a/b"}, "dir/a", true},
		{[]string{"dir", "!dir/a/b"}, "other", false},
		{[]string{"*", "!**/*.go"}, "anything", true},
		{[]string{"dir", "!dir/*.go"}, "dir/sub", true},
	}
	for _, tc := range tests {
		pm, err := NewPatternMatcher(tc.patterns)
		if err != nil {
			t.Fatal(err)
		}
		if got := pm.ExceptionMayMatchUnder(tc.dir); got != tc.want {
			t.Errorf("%v under %q = %v, want %v", tc.patterns, tc.dir, got, tc.want)
		}
	}
}

func TestWalkExcludes(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, f := range []string{"a.txt", "b.go", "dir/x.txt", "dir/keep/y.txt", "dir/keep/z.go", "vendor/v.go", "z/deep/k.go"} {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		patterns []string
		want     []string
	}{
		{nil, []string{"a.txt", "b.go", "dir", "dir/keep", "dir/keep/y.txt", "dir/keep/z.go", "dir/x.txt", "vendor", "vendor/v.go", "z", "z/deep", "z/deep/k.go"}},
		{[]string{"*.txt", "vendor"}, []string{"b.go", "dir", "dir/keep", "dir/keep/y.txt", "dir/keep/z.go", "dir/x.txt", "z", "z/deep", "z/deep/k.go"}},
		{[]string{"dir", "!dir/keep/*.go"}, []string{"a.txt", "b.go", "dir", "dir/keep", "dir/keep/z.go", "vendor", "vendor/v.go", "z", "z/deep", "z/deep/k.go"}},
		{[]string{"**", "!**/*.go"}, []string{"b.go", "dir", "dir/keep", "dir/keep/z.go", "vendor", "vendor/v.go", "z", "z/deep", "z/deep/k.go"}},
	}
	for _, tc := range tests {
		pm, err := NewPatternMatcher(tc.patterns)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		err = Walk(context.Background(), root, ExcludeFilter(pm), func(rel string, fi os.FileInfo) error {
			got = append(got, rel)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v:\n got %v\nwant %v", tc.patterns, got, tc.want)
		}
	}
}

func TestMkdirAllInRootConfined(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	sentinel := filepath.Join(base, "sentinel")
	for _, d := range []string{root, sentinel} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../sentinel", filepath.Join(root, "rel")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(root, "abs")); err != nil {
		t.Fatal(err)
	}
	// Dangling symlinks whose target's parent is missing: the target is
	// created with its parents, inside root (BuildKit's
	// testSymlinkDestination).
	if err := os.Symlink("../tmp/target", filepath.Join(root, "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/../../sentinel/a/b", filepath.Join(root, "dangling-out")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"../../sentinel/x", "rel/y", "abs/z/w", "dangling", "dangling-out/c"} {
		h, err := MkdirAllInRoot(root, p, 0o750, nil)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if r, err := filepath.Rel(root, h); err != nil || r == ".." || filepath.IsAbs(r) || len(r) >= 2 && r[:2] == ".." {
			t.Errorf("%s resolved outside root: %s", p, h)
		}
		fi, err := os.Stat(h)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
			t.Errorf("%s: %v %v", p, fi, err)
		}
	}
	if ents, _ := os.ReadDir(sentinel); len(ents) != 0 {
		t.Errorf("sentinel touched: %v", ents)
	}
	for _, p := range []string{"tmp/target", "sentinel/a/b/c"} {
		if fi, err := os.Stat(filepath.Join(root, p)); err != nil || !fi.IsDir() {
			t.Errorf("%s not created in root: %v", p, err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := MkdirAllInRoot(root, "file/sub", 0o755, nil); err == nil {
		t.Error("mkdir under a file: no error")
	}
}
