// Package archive extracts untrusted tar streams into a directory: the one
// extractor behind a build context on stdin, ADD of a local archive and
// applying an image layer to a snapshot.
//
// Every path is confined to the destination (buildah's copier is the
// model): names are resolved inside it as if it were "/", symlinks met on
// the way (absolute or relative) resolve inside it, hard links must point
// at an earlier entry inside it, and an entry replaces a symlink at its
// place instead of writing through it. What else happens is an Option:
// who owns the files, whether device nodes, xattrs and times are restored,
// whether OCI whiteouts delete what they name, and how many entries and
// bytes the archive may hold.
package archive
