// Command seed pushes the registrytest busybox base image to a running
// registry, for CI and the README's example:
//
//	go run ./internal/registrytest/cmd/seed -registry 127.0.0.1:5000 -ref 127.0.0.1:5000/busybox:latest
package main
