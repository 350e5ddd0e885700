// Package overlay is the overlayfs snapshotter: each snapshot is an upper
// dir, and the upper dir of a committed snapshot is its layer diff. It is
// an explicit constructor around snapshot.NewNamed(root, "overlay"); the
// implementation lives in package snapshot so that snapshot.New can choose
// between it and the native fallback without an import cycle.
package overlay
