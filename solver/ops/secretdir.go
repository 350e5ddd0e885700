package ops

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// secretDirPrefix names the directories that hold a RUN's secret files:
// builder-secrets-PID-STARTTIME-RANDOM, so that the next start can tell
// the leftovers of a dead process (kill -9) from a live build's.
const secretDirPrefix = "builder-secrets-"

// secretBases are where secret directories may go, first match wins: a
// memory filesystem only, so that a secret never reaches a disk.
func secretBases() []string {
	var out []string
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && os.Geteuid() != 0 {
		out = append(out, d)
	}
	return append(out, "/dev/shm", "/run")
}

// isMemoryFS reports whether dir is on tmpfs or ramfs.
func isMemoryFS(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC
}

var cleanSecretsOnce sync.Once

// secretTempDir makes a private (0700) directory for a RUN's secrets on a
// memory filesystem. The first call of a process removes the secret
// directories of dead processes.
func secretTempDir() (string, error) {
	for _, base := range secretBases() {
		if !isMemoryFS(base) || unix.Access(base, unix.W_OK) != nil {
			continue
		}
		cleanSecretsOnce.Do(func() { CleanStaleSecretDirs(base) })
		start, err := procStartTime(os.Getpid())
		if err != nil {
			return "", err
		}
		return os.MkdirTemp(base, fmt.Sprintf("%s%d-%s-", secretDirPrefix, os.Getpid(), start))
	}
	return "", fmt.Errorf("no memory filesystem (tmpfs) to hold secrets: tried %s", strings.Join(secretBases(), ", "))
}

// CleanStaleSecretDirs removes the secret directories under base whose
// process is gone (or whose pid now names another process: its start
// time differs). It never touches a live process's directory.
func CleanStaleSecretDirs(base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), secretDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		parts := strings.SplitN(rest, "-", 3)
		if len(parts) != 3 {
			continue
		}
		pid, err := strconv.Atoi(parts[0])
		if err != nil || pid <= 0 {
			continue
		}
		if start, err := procStartTime(pid); err == nil && start == parts[1] {
			continue // alive
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			continue // cannot tell: keep it
		}
		_ = os.RemoveAll(filepath.Join(base, e.Name()))
	}
}

// procStartTime is the start time of process pid in clock ticks since
// boot (field 22 of /proc/PID/stat); os.ErrNotExist when there is no
// such process.
func procStartTime(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it start after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): field 22 is f[19].
	if len(f) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return f[19], nil
}
