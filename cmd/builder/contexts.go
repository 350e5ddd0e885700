package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/internal/archive"
	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/state"
)

// extractContextTar extracts a build context tar (plain; as docker build
// - < ctx.tar) into dir. Every entry stays inside dir: names are resolved
// inside it, and links pointing out are kept as links, never followed.
// Files are the caller's, without setuid bits, devices and fifos are left
// out, hard links must point at earlier regular files.
func extractContextTar(r io.Reader, dir string) error {
	err := archive.Extract(context.Background(), r, dir, archive.Options{ModeMask: 0o777, RegularHardLinks: true})
	if err != nil {
		return fmt.Errorf("context tar: %w", err)
	}
	return nil
}

// stdinInputs turns "-" as the context (a tar on stdin, plain, gzip or
// bzip2, or else a Dockerfile with an empty context, as buildx) or as -f
// (a Dockerfile on stdin) into paths under root. The returned cleanup
// removes what it made.
func stdinInputs(o *BuildOptions, root *state.Root, stdin io.Reader) (func(), error) {
	noop := func() {}
	if o.ContextDir != "-" && o.Dockerfile != "-" {
		return noop, nil
	}
	if o.ContextDir == "-" && o.Dockerfile == "-" {
		return noop, errors.New("the build context and the Dockerfile cannot both come from stdin")
	}
	tmp, err := root.TempDir("stdin-")
	if err != nil {
		return noop, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	if stdin == nil {
		stdin = os.Stdin
	}
	if o.Dockerfile == "-" {
		o.Dockerfile, err = saveStdinDockerfile(stdin, tmp)
		return cleanup, err
	}
	ctxDir := filepath.Join(tmp, "context")
	if err := os.Mkdir(ctxDir, 0o755); err != nil {
		return cleanup, err
	}
	kind, in, err := sniffStdin(stdin)
	if err != nil {
		return cleanup, err
	}
	o.ContextDir = ctxDir
	if kind == stdinDockerfile {
		// docker build - < Dockerfile: an empty context, as buildx.
		if o.Dockerfile != "" {
			return cleanup, errors.New("ambiguous Dockerfile source: both stdin and flag correspond to Dockerfiles")
		}
		o.Dockerfile, err = saveStdinDockerfile(in, tmp)
		return cleanup, err
	}
	if err := extractContextTar(in, ctxDir); err != nil {
		return cleanup, err
	}
	if o.Dockerfile != "" && !filepath.IsAbs(o.Dockerfile) {
		// -f names a file inside the tar, as docker build does.
		p, err := fsutil.ResolveInRoot(ctxDir, o.Dockerfile)
		if err != nil {
			return cleanup, err
		}
		o.Dockerfile = p
	}
	return cleanup, nil
}

// saveStdinDockerfile writes the Dockerfile read from r (at most
// build.MaxDockerfileSize bytes) to tmp/Dockerfile and returns its path.
func saveStdinDockerfile(r io.Reader, tmp string) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, build.MaxDockerfileSize+1))
	if err != nil {
		return "", fmt.Errorf("reading the Dockerfile from stdin: %w", err)
	}
	if len(data) > build.MaxDockerfileSize {
		return "", fmt.Errorf("the Dockerfile on stdin is larger than %d bytes", build.MaxDockerfileSize)
	}
	p := filepath.Join(tmp, "Dockerfile")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return "", err
	}
	return p, nil
}
