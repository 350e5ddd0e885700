// Package registrytest holds helpers for tests that talk to a registry: an
// in-process registry (go-containerregistry's pkg/registry behind
// httptest), the real distribution server (Debian's docker-registry) on a
// free loopback port, a deterministic busybox base image built from the
// host's static busybox, and push helpers.
//
// It imports "testing" and is meant for tests and for the small seed
// command in cmd/seed, never for the builder binary itself.
package registrytest
