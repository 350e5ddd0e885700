// Package dockerfile converts a Dockerfile into an llb graph and the OCI image
// config of the stage it builds.
//
// Convert parses the Dockerfile with BuildKit's parser and instructions
// packages and converts the AST at once into this module's own types: no
// BuildKit type leaves the package. The conversion follows BuildKit's
// dockerfile2llb closely, so that the same Dockerfile gives the same steps,
// environment, history and image config as `docker buildx build`:
//
//   - FROM becomes an llb.ImageOp pinned by digest (or the empty tree for
//     scratch), RUN an llb.ExecOp whose Mounts[0] is the stage's root, COPY,
//     ADD and WORKDIR an llb.FileOp whose input 0 (Base) is the stage's root.
//   - All other instructions only change the image config; they are baked into
//     the ops that need them (an exec's env, user and cwd).
//   - The build context is one llb.LocalOp named "context" per build.
//   - Config.History holds the base image's history and one entry per
//     instruction; entries whose instruction became a vertex on the root
//     chain are the non-empty ones, in layer order.
//
// Only the stages the target needs are converted, and only their images are
// resolved. Every error names the Dockerfile and the line it comes from.
package dockerfile
