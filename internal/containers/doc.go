// Package containers is the record store of `builder run`: one record per
// container (ROOT/containers/<ID>/config.json) from the moment it is
// created until `builder rm` (or run --rm) removes it together with its
// snapshot, so that no container filesystem is ever left without a record
// that names it.
//
// A builder process that runs a container holds an flock on the
// container's "running" file for as long as the container lives: Running
// tells a live container from a record left behind by a process that died,
// without trusting the pid in the record. Creation and removal of records
// take an exclusive flock on ROOT/containers/lock, which makes names
// unique across processes.
//
// The store is opened by package state, the owner of the state root.
package containers
