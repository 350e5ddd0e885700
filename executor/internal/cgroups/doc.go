// Package cgroups creates one control group per sandboxed process tree, sets
// its resource limits, reads its resource use and destroys it again, on both
// the legacy v1 hierarchies (one mount per controller) and the unified v2
// hierarchy.
//
// The API is deliberately small: New creates the group under the calling
// process's own cgroup, then Set, Apply, Stats and Destroy. Destroy freezes
// the group, SIGKILLs every member, thaws it, waits until it is empty and
// removes its directories, so nothing a sandbox started survives it.
package cgroups
