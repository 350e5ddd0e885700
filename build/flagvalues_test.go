package build

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestParseNamedContexts checks buildx's --build-context name=VALUE forms:
// a directory (with its own .dockerignore), docker-image://REF and
// oci-layout://PATH[:TAG|@DIGEST], names folded to lower case, and the
// errors.
func TestParseNamedContexts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("*.log\n!keep.log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("forms", func(t *testing.T) {
		got, err := ParseNamedContexts([]string{
			"Src=" + dir,
			"base=docker-image://alpine:3.20",
			"lay=oci-layout:///srv/layout:v1",
			"pinned=oci-layout:///srv/layout@sha256:" + strings.Repeat("a", 64),
			"web=https://example.com/src.tar",
		})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]NamedContext{
			"src":    {Dir: dir},
			"base":   {Image: "alpine:3.20"},
			"lay":    {Layout: "/srv/layout:v1"},
			"pinned": {Layout: "/srv/layout@sha256:" + strings.Repeat("a", 64)},
			"web":    {HTTP: "https://example.com/src.tar"},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseNamedContexts = %v, want %v (names folded to lower case)", got, want)
		}
	})

	errs := []struct {
		spec, err string
	}{
		{"noequals", "want name=VALUE"},
		{"=" + dir, "want name=VALUE"},
		{"x=", "want name=VALUE"},
		{"x=https://example.com/repo.git", "git repository as a named context is not supported"},
		{"x=https://example.com/repo.git#main", "git repository"},
		{"x=git://example.com/repo", "unsupported source"},
		{"x=" + filepath.Join(dir, "missing"), "is not a directory"},
		{"x=" + file, "is not a directory"},
	}
	for _, e := range errs {
		t.Run("error "+e.spec, func(t *testing.T) {
			_, err := ParseNamedContexts([]string{e.spec})
			if err == nil || !strings.Contains(err.Error(), e.err) {
				t.Fatalf("ParseNamedContexts(%q) error = %v, want one containing %q", e.spec, err, e.err)
			}
		})
	}
}

func TestParseLabels(t *testing.T) {
	t.Parallel()
	got := ParseLabels([]string{"b=x", "c=y=z", "d"})
	want := map[string]string{"b": "x", "c": "y=z", "d": ""}
	if len(got) != len(want) {
		t.Fatalf("labels %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("label %s = %q, want %q", k, got[k], v)
		}
	}
	if ParseLabels(nil) != nil {
		t.Error("no --label must keep no labels")
	}
}
