// Package snapshottest is the conformance suite every snapshot.Snapshotter
// implementation must pass: lifecycle and errors, persistence across
// reopen, exact Diff output, Apply/Diff round trips, whiteouts, hostile
// layers that try to escape the snapshot, deep parent chains and
// concurrent use. The tests need root and are skipped with -short.
package snapshottest
