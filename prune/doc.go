// Package prune is the library form of builder's clean-up commands: the
// build cache prune (builder prune), the disk usage report (builder du),
// image prune (builder image prune) and the automatic garbage collection
// after a build (--gc-limit). Each works on an open state.Root and keeps
// what the stored images and the containers still use.
//
// Prompts, printing and exit codes are the CLI's (cmd/builder).
package prune
