package executor

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/builderdev/builder/executor/internal/cgroups"
)

// TestRecoverRecordCutShort: a builder killed between writing its cgroup
// record and renaming it into place leaves the record under its temp
// name; recovery still removes the cgroup and the run directory.
func TestRecoverRecordCutShort(t *testing.T) {
	requireCgroups(t)
	state := t.TempDir()
	id := "0123456789abcdef"
	cg, err := cgroups.New("", "builder-test-"+id, nil)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { _ = cg.Destroy() })
	runDir := filepath.Join(state, "run-p1x0123456789ab-"+id) // a lease nobody holds
	if err := os.Mkdir(runDir, 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(cgroupFile{Dirs: cg.Dirs()})
	if err := os.WriteFile(filepath.Join(runDir, ".tmp-"+cgroupRecord+"-42"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	// A second temp cut short names nothing and goes too.
	if err := os.WriteFile(filepath.Join(runDir, ".tmp-"+cgroupRecord+"-43"), b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Recover(state); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if _, err := os.Lstat(runDir); !os.IsNotExist(err) {
		left, _ := os.ReadDir(runDir)
		t.Errorf("run directory left (%v): %v", err, left)
	}
	for _, d := range cg.Dirs() {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left (%v)", d, err)
		}
	}
}

// TestRecoverRemovesParents: the record a sandbox's cgroup announces
// before it is made names the --cgroup-parent groups it makes too, so a
// builder killed right after making them leaves nothing for recovery to
// miss.
func TestRecoverRemovesParents(t *testing.T) {
	requireCgroups(t)
	state := t.TempDir()
	id := "fedcba9876543210"
	runDir := filepath.Join(state, "run-p1xfedcba98765432-"+id) // a lease nobody holds
	if err := os.Mkdir(runDir, 0o700); err != nil {
		t.Fatal(err)
	}
	parent := fmt.Sprintf("recover-test-%d/ci", os.Getpid())
	cg, err := cgroups.New(parent, "builder-test-"+id, func(dirs map[string]string, parents []string) error {
		return recordCgroup(runDir, cgroupFile{Dirs: dirs, Parents: parents})
	})
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { _ = cg.Destroy() })
	if len(cg.Parents()) == 0 {
		t.Fatalf("no parents made for %s", parent)
	}
	// Killed here: nothing else was written.
	if err := Recover(state); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	for _, d := range append(slices.Collect(maps.Values(cg.Dirs())), cg.Parents()...) {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left (%v)", d, err)
		}
	}
}

// requireCgroups skips a test that makes cgroups where it cannot.
func requireCgroups(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for cgroups")
	}
	if _, err := cgroups.Detect(); err != nil {
		t.Skip(err)
	}
}
