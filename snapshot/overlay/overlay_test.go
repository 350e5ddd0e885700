package overlay_test

import (
	"os"
	"testing"

	"github.com/builderdev/builder/internal/snapshottest"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/snapshot/overlay"
)

func TestConformance(t *testing.T) {
	if os.Geteuid() == 0 && !testing.Short() {
		if _, err := overlay.New(t.TempDir()); err != nil {
			t.Skipf("overlay not usable here: %v", err)
		}
	}
	snapshottest.Run(t, func(t *testing.T, root string) snapshot.Snapshotter {
		sn, err := overlay.New(root)
		if err != nil {
			t.Fatal(err)
		}
		return sn
	})
}
