package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestVersion checks builder version: every field is there, the Go
// version is this one, and a root not used yet is not created.
func TestVersion(t *testing.T) {
	root := filepath.Join(t.TempDir(), "state")
	var out bytes.Buffer
	cmd := newVersionCommand()
	cmd.SetArgs([]string{"--root", root})
	cmd.SetOut(&out)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`(?m)^Version: +\S`, `(?m)^Commit: +\S`, `(?m)^Go version: +` + regexp.QuoteMeta(runtime.Version()) + `$`,
		`(?m)^OS/Arch: +linux/`, `(?m)^Mode: +(root|rootless)`, `(?m)^Snapshotter: +(overlay|native) \(available; ` + regexp.QuoteMeta(root) + ` is not used yet\)$`,
		`(?m)^Cgroups: +(cgroup v[12]|none \(.+\))$`} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("builder version output lacks %s:\n%s", re, out.String())
		}
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("builder version created the root: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(root)); len(ents) != 0 {
		t.Errorf("builder version left %v behind", ents)
	}
}

// TestVersionFlag checks builder --version and the link-time version of a
// binary built as the Makefile builds it.
func TestVersionFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "builder")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7 -X main.commit=abcdef1", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "builder version v9.8.7, build abcdef1" {
		t.Errorf("builder --version: %v %q", err, out)
	}
}
