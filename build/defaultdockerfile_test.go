package build

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDefaultDockerfile: without -f, "Dockerfile" wins and a lowercase
// "dockerfile" is the fallback (BuildKit's TestDockerfileLowercase,
// moby/moby#10858).
func TestDefaultDockerfile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		files []string
		want  string
	}{
		{"upper only", []string{"Dockerfile"}, "Dockerfile"},
		{"lower only", []string{"dockerfile"}, "dockerfile"},
		{"neither", nil, "Dockerfile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("FROM scratch\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := DefaultDockerfile(dir); got != filepath.Join(dir, tc.want) {
				t.Errorf("defaultDockerfile = %s, want %s", got, filepath.Join(dir, tc.want))
			}
		})
	}
}
