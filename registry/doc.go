// Package registry talks to OCI/Docker registries for the builder: it
// resolves image references (tags and digests, multi-platform indexes) to a
// pinned platform manifest and its config, and pulls layer blobs into the
// content-addressed blob store of package cache.
//
// The protocol work (auth challenges, tokens, retries, blob verification)
// is go-containerregistry's remote package. This package adds what a build
// needs around it: Docker's rules for plain-HTTP registries, a manifest size
// limit, platform selection with a helpful error, and a blob store that
// makes a second resolve of a pinned reference and a second pull free of
// network traffic.
package registry
