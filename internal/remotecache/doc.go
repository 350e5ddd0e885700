// Package remotecache moves the build cache between machines through the
// places a team already has: a registry (--cache-to/--cache-from
// type=registry), an OCI layout directory (type=local) or the config of a
// pushed image (type=inline).
//
// The exported cache is an OCI artifact: a config blob of media type
// ConfigMediaType listing records, and the layer blobs the records use.
// A record maps one of our cache keys (computed from op digests, input
// keys and content checksums: no paths, host names or times) to a chain
// of layers, with each step's creation time, so that a machine that
// imports it builds the same image digest. Everything in it is sorted and
// free of times of the export, so an unchanged build exports a
// byte-identical manifest.
//
// Imports are lazy: a key found in an imported cache becomes a result
// whose layers are descriptors (see ops.Worker.ImportChain); its blobs are
// downloaded only when an op needs its files or an export needs its bytes,
// and a push to the same registry mounts them.
package remotecache
