package ops

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretTempDirOnTmpfs(t *testing.T) {
	dir, err := secretTempDir()
	if err != nil {
		t.Skipf("no tmpfs here: %v", err)
	}
	defer os.RemoveAll(dir)
	if !isMemoryFS(dir) {
		t.Fatalf("%s is not on a memory filesystem", dir)
	}
	start, _ := procStartTime(os.Getpid())
	if want := fmt.Sprintf("%s%d-%s-", secretDirPrefix, os.Getpid(), start); !strings.HasPrefix(filepath.Base(dir), want) {
		t.Errorf("%s does not start with %s", dir, want)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v, %v; want a 0700 directory", dir, fi.Mode(), err)
	}
}

// TestCleanStaleSecretDirs removes the secret directories of dead
// processes (and of a reused pid) and keeps a live process's.
func TestCleanStaleSecretDirs(t *testing.T) {
	base := t.TempDir()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	dead := cmd.Process.Pid
	start, err := procStartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name string) string {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Join(p, "x"), 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(p, "x", "secret"), []byte("s"), 0o400)
		return p
	}
	live := mk(fmt.Sprintf("%s%d-%s-abc", secretDirPrefix, os.Getpid(), start))
	reused := mk(fmt.Sprintf("%s%d-%s-abc", secretDirPrefix, os.Getpid(), start+"0"))
	gone := mk(fmt.Sprintf("%s%d-123-abc", secretDirPrefix, dead))
	other := mk("builder-secretsX-1-2-3")
	odd := mk(secretDirPrefix + "notapid-1-2")
	CleanStaleSecretDirs(base)
	for p, keep := range map[string]bool{live: true, reused: false, gone: false, other: true, odd: true} {
		_, err := os.Stat(p)
		if keep && err != nil {
			t.Errorf("%s was removed", filepath.Base(p))
		}
		if !keep && err == nil {
			t.Errorf("%s was kept", filepath.Base(p))
		}
	}
}
