package overlay

import "github.com/builderdev/builder/snapshot"

// New opens the overlay snapshotter under root. It fails when overlayfs
// cannot be mounted there (not root, no kernel support, or a filesystem
// that cannot hold an upper dir).
func New(root string) (snapshot.Snapshotter, error) {
	return snapshot.NewNamed(root, "overlay")
}
