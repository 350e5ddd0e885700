// Package ops implements the solver's ops on real machinery: image sources
// through package registry, local contexts as host directories, exec ops in
// the executor's sandbox on snapshots, and file ops through package fileop on
// mounted snapshots. It also turns a solved result into the image's layers.
//
// A stored result is a record in the cache's metadata store: the committed
// snapshot that holds its tree, the record it was built on, and its layer
// blob once computed. Layers are computed lazily, when an exporter asks,
// and kept, so a cached build never diffs or compresses again.
package ops
