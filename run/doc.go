// Package run is the library form of `builder run`: it resolves an image
// (an OCI layout, an image of the local store or a registry reference,
// pulled as docker run's --pull says), unpacks its layers into a
// snapshot, records the container under the state root, runs its process
// in the executor's sandbox (on a pty with Tty) and returns its exit code
// as docker run reports it.
//
// Flag parsing and the exit status of the CLI are cmd/builder's; the only
// output here is what docker run itself writes to the container's stderr
// (warnings, a command that could not start).
package run
