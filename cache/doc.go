// Package cache keeps the builder's persistent state under one root
// directory (the builder's --root/cache):
//
//	ROOT/content/   BlobStore: content-addressed blobs (layers, configs)
//	ROOT/keys/log   key store: cache key -> result ID, plus what each key was
//	                computed from (KeyInfo), as an append-only log
//	ROOT/meta/      MetaStore: JSON records by ID (the worker's result records)
//
// Open returns a Store that bundles them. A Store implements the solver's
// KeyStore (Load, Save), its KeyRecorder (SaveKey) and its MissExplainer
// (ExplainMiss): when a key misses, ExplainMiss finds the stored key that the
// step produced last time and says which input differs.
//
// Every write is crash-safe: blobs and metadata records are written to a
// temp file, fsynced and renamed into place; the key log is appended with
// whole lines under an exclusive flock(2), and a torn last line left by a
// crash is cut off by the next writer. Two builder processes may share a
// root at once: the key store rereads what the other appended, and follows
// the log when the other compacts it.
//
// FileHashCache memoizes content checksums of build-context files by their
// stat data, so a rebuild of an unchanged context costs only stats.
//
// Garbage collection is explicit: Store.Prune drops key records whose
// results are gone, and BlobStore.Prune removes blobs no one references.
package cache
