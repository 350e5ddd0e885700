package native_test

import (
	"testing"

	"github.com/builderdev/builder/internal/snapshottest"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/snapshot/native"
)

func TestConformance(t *testing.T) {
	snapshottest.Run(t, func(t *testing.T, root string) snapshot.Snapshotter {
		sn, err := native.New(root)
		if err != nil {
			t.Fatal(err)
		}
		return sn
	})
}
