package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// complete runs cobra's hidden __complete command as a shell would and
// returns the candidates.
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(append([]string{"__complete"}, args...))
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if l != "" && !strings.HasPrefix(l, ":") {
			got = append(got, strings.SplitN(l, "\t", 2)[0])
		}
	}
	return got
}

func TestCompletion(t *testing.T) {
	root := seedImages(t)
	dir := t.TempDir()
	df := filepath.Join(dir, "Dockerfile")
	os.WriteFile(df, []byte("FROM scratch AS base\n# dev the development image\nFROM base AS dev\nFROM base AS prod\nFROM prod\n"), 0o644)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--root", root, ""}, "app:1 registry.example.com/team/app:2"},
		{[]string{"run", "--root", root, "reg"}, "registry.example.com/team/app:2"},
		{[]string{"run", "--root", root, "app:1", ""}, ""}, // the command, not an image
		{[]string{"rmi", "--root", root, "app:1", "a"}, "app:1"},
		{[]string{"run", "--root", filepath.Join(dir, "none"), ""}, ""},
		{[]string{"build", dir, "--target", ""}, "base dev prod"},
		{[]string{"build", "-f", df, ".", "--target", "d"}, "dev"},
		{[]string{"build", "--progress", ""}, "auto plain tty quiet rawjson"},
		{[]string{"push", "--progress", "p"}, "plain"},
		// builder image ls, rm, ... complete as images, rmi, ...
		{[]string{"image", "rm", "--root", root, "reg"}, "registry.example.com/team/app:2"},
		{[]string{"image", "inspect", "--root", root, "app"}, "app:1"},
		{[]string{"image", "build", "--progress", "p"}, "plain"},
	}
	for _, tt := range tests {
		if got := strings.Join(complete(t, tt.args...), " "); got != tt.want {
			t.Errorf("complete %q = %q, want %q", tt.args, got, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "none")); !os.IsNotExist(err) {
		t.Errorf("completion created a root: %v", err)
	}
}
