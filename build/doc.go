// Package build is the library entry point of builder: one call turns a
// Dockerfile and a context into an image in the local store and in every
// requested output, as BuildKit's client.Solve or buildah's
// imagebuildah.BuildDockerfiles do.
//
// A Builder is made from its dependencies, passed in: the state root (an
// open state.Root, which owns the cache, snapshots, executor and image
// store) and a registry client. Build takes a typed Request (secrets as
// bytes, the platform as llb.Platform, outputs as Output values, never CLI
// strings), sends progress to a Reporter and returns a Result: the image
// ID, the manifest descriptor, the stored names and per-step statistics.
//
// Flag parsing, the progress display, --iidfile/--metadata-file and exit
// codes are the CLI's (cmd/builder); nothing here prints.
package build
