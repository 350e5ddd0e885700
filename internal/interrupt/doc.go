// Package interrupt turns SIGINT and SIGTERM into the cancellation of a
// context, so that a command cleans up and exits as docker does (128 plus
// the signal), while a second signal ends the process at once.
package interrupt
