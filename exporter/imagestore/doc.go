// Package store is the local image store: the images builds produced, by
// name, kept under ROOT/images as an OCI image index (index.json: one
// manifest descriptor per name, annotated like BuildKit's oci exporter,
// plus one without a name for each image that has none). The manifests,
// configs and layers live in the cache's blob store, so storing a built
// image copies nothing but two small blobs.
//
// Every change takes an exclusive flock on ROOT/images/lock, reads the
// index, changes it and writes it back through a temp file and a rename, so
// two processes (two builds, or a build and `builder rmi`) never lose each
// other's updates and readers never see a partial index.
//
// Source wraps a registry client so that images in the store are used
// before any registry, as `docker build` uses local images: a stored image
// is pinned as "<full name>@<manifest digest>" (for example
// "docker.io/library/app:latest@sha256:…"), and any pinned reference
// whose digest is a stored manifest is served from the store without the
// network.
package imagestore
