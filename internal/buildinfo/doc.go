// Package buildinfo reads the version of the builder binary: the one set
// at link time (-ldflags -X), else the module version and VCS revision the
// go command records in the binary.
package buildinfo
