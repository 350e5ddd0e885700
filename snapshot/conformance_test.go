package snapshot_test

import (
	"os"
	"testing"

	"github.com/builderdev/builder/internal/snapshottest"
	"github.com/builderdev/builder/snapshot"
)

// TestConformance runs the conformance suite against both snapshotters,
// opened by name as NewNamed does for --snapshotter.
func TestConformance(t *testing.T) {
	for _, name := range []string{"overlay", "native"} {
		t.Run(name, func(t *testing.T) {
			if name == "overlay" && os.Geteuid() == 0 && !testing.Short() {
				sn, err := snapshot.NewNamed(t.TempDir(), name)
				if err != nil {
					t.Skipf("overlay not usable here: %v", err)
				}
				sn.Close()
			}
			snapshottest.Run(t, func(t *testing.T, root string) snapshot.Snapshotter {
				sn, err := snapshot.NewNamed(root, name)
				if err != nil {
					t.Fatal(err)
				}
				return sn
			})
		})
	}
}
