// Package exporter turns a built image (a config and layers kept in the
// blob store of package cache) into its outputs: a go-containerregistry
// v1.Image for the registry and tarball sinks, and an OCI image layout tar
// stream like BuildKit's oci exporter writes.
//
// Layers are never held in memory: every output reads them straight from
// the blob store.
package exporter
