package native

import "github.com/builderdev/builder/snapshot"

// New opens the native snapshotter under root.
func New(root string) (snapshot.Snapshotter, error) {
	return snapshot.NewNamed(root, "native")
}
