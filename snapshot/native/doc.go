// Package native is the copy-based snapshotter: Prepare copies the parent
// tree, Diff compares a snapshot's tree with its parent's. It works on any
// filesystem and needs no mount privileges for the trees themselves. It is
// an explicit constructor around snapshot.NewNamed(root, "native").
package native
