package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/internal/archive"
	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/state"
)

// parseBuildContexts reads buildx --build-context name=VALUE flags: a
// directory, docker-image://REF, oci-layout://PATH[:TAG]
// (or oci-layout://PATH@sha256:...) or an http(s):// URL (a file; a git
// URL over HTTP is not recognized as git). Names are folded to lower case.
func parseBuildContexts(specs []string) (map[string]build.NamedContext, error) {
	m := map[string]build.NamedContext{}
	for _, s := range specs {
		name, val, ok := strings.Cut(s, "=")
		if !ok || name == "" || val == "" {
			return nil, fmt.Errorf("--build-context %q: want name=VALUE", s)
		}
		name = strings.ToLower(name)
		switch {
		case strings.HasPrefix(val, "docker-image://"):
			m[name] = build.NamedContext{Image: strings.TrimPrefix(val, "docker-image://")}
		case strings.HasPrefix(val, "oci-layout://"):
			m[name] = build.NamedContext{Layout: strings.TrimPrefix(val, "oci-layout://")}
		case strings.HasPrefix(val, "http://") || strings.HasPrefix(val, "https://"):
			if isGitURL(val) {
				return nil, fmt.Errorf("--build-context %q: a git repository as a named context is not supported (an http(s):// URL of a file is)", s)
			}
			m[name] = build.NamedContext{HTTP: val}
		case strings.Contains(val, "://"):
			return nil, fmt.Errorf("--build-context %q: unsupported source %q (a directory, docker-image://, oci-layout:// or http(s)://)", s, val)
		default:
			if fi, err := os.Stat(val); err != nil || !fi.IsDir() {
				return nil, fmt.Errorf("--build-context %q: %s is not a directory", s, val)
			}
			m[name] = build.NamedContext{Dir: val}
		}
	}
	return m, nil
}

// isGitURL reports whether an http(s) URL names a git repository, as
// BuildKit's git detection does: a path ending in .git, or a #ref
// fragment.
func isGitURL(u string) bool {
	base, _, frag := strings.Cut(u, "#")
	if frag {
		return true
	}
	if i := strings.IndexAny(base, "?"); i >= 0 {
		base = base[:i]
	}
	return strings.HasSuffix(strings.TrimSuffix(base, "/"), ".git")
}

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
