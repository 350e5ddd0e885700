// Package fileop applies llb file ops (COPY, ADD, WORKDIR's mkdir, mkfile,
// rm) to plain host directories, with the semantics of docker build and
// BuildKit, and computes the content checksums that key a COPY in the cache.
//
// The caller mounts the snapshots and passes host paths: Apply changes the
// destination tree in place; Checksum and TreeDigest only read. Every path
// taken from an op, a context or an archive is hostile: it is resolved inside
// its root (fsutil.ResolveInRoot), so neither "..", absolute or relative
// symlinks nor hard links can reach outside the source or destination root.
//
// The source of a copy is read through its filter: the .dockerignore
// patterns of a local context (Input.Excludes) hide paths as if they were
// not there, and COPY --exclude patterns (Copy.ExcludePatterns) drop paths
// relative to each copied source.
package fileop
