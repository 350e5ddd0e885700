package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/builderdev/builder/executor/internal/cgroups"
	"github.com/builderdev/builder/internal/fsutil"
)

// A run directory is named run-<lease>-<id> after the lease of the builder
// process that made it (fsutil.OwnLease in STATE/leases). Its file
// "cgroups" records the sandbox's cgroup directories before they exist,
// so that when the builder is killed (kill -9: no deferred clean-up runs)
// the next executor on the same state directory can remove them.

const cgroupRecord = "cgroups"

// cgroupFile is the content of the record.
type cgroupFile struct {
	Dirs    map[string]string `json:"dirs"`
	Parents []string          `json:"parents,omitempty"`
}

// recordCgroup writes rec into runDir. It is not synced: cgroups do not
// outlive a reboot, and what a killed process wrote is in the page cache.
func recordCgroup(runDir string, rec cgroupFile) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return fsutil.ReplaceFile(filepath.Join(runDir, cgroupRecord), 0o600, b)
}

// Recover removes what killed builder processes left in the state
// directory: for every run directory whose owner is dead, the processes
// still in its cgroup, the cgroup in every hierarchy and the directory
// itself. Run directories of live processes, this one included, and
// directories it cannot attribute stay. It reports what it could not
// remove.
func Recover(stateDir string) error {
	leases := filepath.Join(stateDir, "leases")
	ents, err := os.ReadDir(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("executor state %s: %w", stateDir, err)
	}
	var errs []error
	for _, ent := range ents {
		owner := fsutil.OwnerOf(ent.Name(), "run-")
		if owner == "" || fsutil.LeaseLive(leases, owner) {
			continue
		}
		runDir := filepath.Join(stateDir, ent.Name())
		if err := recoverRunDir(runDir); err != nil {
			errs = append(errs, err)
		}
	}
	fsutil.ReapLeases(leases)
	return errors.Join(errs...)
}

// recoverRunDir destroys the recorded cgroup of a dead run and removes the
// run directory (never recursing into a rootfs that could be mounted).
// A builder killed while it wrote the record leaves it under its temp
// name (fsutil.ReplaceFile writes it with one write, then renames): that
// one names the cgroup as well.
func recoverRunDir(runDir string) error {
	records := []string{filepath.Join(runDir, cgroupRecord)}
	if _, err := os.Lstat(records[0]); errors.Is(err, os.ErrNotExist) {
		records, _ = filepath.Glob(filepath.Join(runDir, ".tmp-"+cgroupRecord+"-*"))
	}
	for _, p := range records {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var rec cgroupFile
		if err := json.Unmarshal(b, &rec); err != nil {
			if filepath.Base(p) != cgroupRecord {
				os.Remove(p) // a temp cut short: it names nothing
				continue
			}
			return fmt.Errorf("cgroup record %s: %w", runDir, err)
		}
		cg, err := cgroups.Open(rec.Dirs, rec.Parents)
		if err != nil {
			return fmt.Errorf("cgroup record %s: %w", runDir, err)
		}
		if err := cg.Destroy(); err != nil {
			return fmt.Errorf("removing the cgroup of a killed build: %w", err)
		}
		os.Remove(p)
	}
	removeRunDir(runDir)
	if _, err := os.Lstat(runDir); err == nil {
		left, _ := os.ReadDir(runDir)
		var names []string
		for _, l := range left {
			names = append(names, l.Name())
		}
		return fmt.Errorf("run directory %s of a killed build: could not remove (left: %s)", runDir, strings.Join(names, ", "))
	}
	return nil
}
