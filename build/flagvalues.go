package build

// This file turns the values of builder build's flags (as docker build and
// buildx write them) into the typed fields of a Request.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/builderdev/builder/frontend/dockerfile"
	"github.com/builderdev/builder/solver/ops"
)

// ParseSecrets reads buildx --secret values into a secret store:
// "id=x,src=FILE" (also source=, type=file), "id=x,env=VAR" (type=env), and
// a bare "id=x", which reads the env var x when it is set, else the file x.
// The values stay in memory; they never reach a cache key or the output.
func ParseSecrets(specs []string) (ops.SecretMap, error) {
	m := ops.SecretMap{}
	for _, s := range specs {
		var id, typ, src, env string
		for _, f := range SplitCSV(s) {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				return nil, fmt.Errorf("--secret %q: %q is not key=value", s, f)
			}
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "id":
				id = v
			case "type":
				typ = v
			case "src", "source":
				src = v
			case "env":
				env = v
			default:
				return nil, fmt.Errorf("--secret %q: unknown key %q", s, k)
			}
		}
		if id == "" {
			return nil, fmt.Errorf("--secret %q: id is required", s)
		}
		switch typ {
		case "":
			if src == "" && env == "" {
				if _, ok := os.LookupEnv(id); ok {
					env = id
				} else {
					src = id
				}
			}
		case "file":
			if src == "" {
				src = id
			}
		case "env":
			if env == "" {
				env = id
				if src != "" {
					env = src
				}
			}
			src = ""
		default:
			return nil, fmt.Errorf("--secret %q: unsupported type %q (file or env)", s, typ)
		}
		if env != "" && src == "" {
			v, ok := os.LookupEnv(env)
			if !ok {
				return nil, fmt.Errorf("--secret %q: environment variable %s is not set", s, env)
			}
			m[id] = []byte(v)
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("--secret %q: reading %s: %w", s, src, err)
		}
		m[id] = data
	}
	return m, nil
}

// ParseSSH reads buildx --ssh values: "default" (the agent of
// $SSH_AUTH_SOCK), "id" likewise, or "id=SOCKET[,SOCKET]" (the first
// socket is forwarded).
func ParseSSH(specs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, s := range specs {
		id, paths, ok := strings.Cut(s, "=")
		if id == "" {
			return nil, fmt.Errorf("--ssh %q: missing id", s)
		}
		sock := strings.Split(paths, ",")[0]
		if !ok || sock == "" {
			sock = os.Getenv("SSH_AUTH_SOCK")
			if sock == "" {
				return nil, fmt.Errorf("--ssh %q: no socket given and SSH_AUTH_SOCK is not set", s)
			}
		}
		fi, err := os.Stat(sock)
		if err != nil {
			return nil, fmt.Errorf("--ssh %q: %w", s, err)
		}
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("--ssh %q: %s is not a unix socket (forwarding key files is not supported)", s, sock)
		}
		m[id] = sock
	}
	return m, nil
}

// ParseNamedContexts reads buildx --build-context name=VALUE flags: a
// directory, docker-image://REF, oci-layout://PATH[:TAG]
// (or oci-layout://PATH@sha256:...) or an http(s):// URL (a file; a git
// URL over HTTP is not recognized as git). Names are folded to lower case.
func ParseNamedContexts(specs []string) (map[string]NamedContext, error) {
	m := map[string]NamedContext{}
	for _, s := range specs {
		name, val, ok := strings.Cut(s, "=")
		if !ok || name == "" || val == "" {
			return nil, fmt.Errorf("--build-context %q: want name=VALUE", s)
		}
		name = strings.ToLower(name)
		switch {
		case strings.HasPrefix(val, "docker-image://"):
			m[name] = NamedContext{Image: strings.TrimPrefix(val, "docker-image://")}
		case strings.HasPrefix(val, "oci-layout://"):
			m[name] = NamedContext{Layout: strings.TrimPrefix(val, "oci-layout://")}
		case strings.HasPrefix(val, "http://") || strings.HasPrefix(val, "https://"):
			if isGitURL(val) {
				return nil, fmt.Errorf("--build-context %q: a git repository as a named context is not supported (an http(s):// URL of a file is)", s)
			}
			m[name] = NamedContext{HTTP: val}
		case strings.Contains(val, "://"):
			return nil, fmt.Errorf("--build-context %q: unsupported source %q (a directory, docker-image://, oci-layout:// or http(s)://)", s, val)
		default:
			if fi, err := os.Stat(val); err != nil || !fi.IsDir() {
				return nil, fmt.Errorf("--build-context %q: %s is not a directory", s, val)
			}
			m[name] = NamedContext{Dir: val}
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

// ParseLabels reads --label KEY=VALUE values (a bare KEY is an empty
// label, as in docker build).
func ParseLabels(flags []string) map[string]string {
	if len(flags) == 0 {
		return nil
	}
	out := make(map[string]string, len(flags))
	for _, l := range flags {
		k, v, _ := strings.Cut(l, "=")
		out[k] = v
	}
	return out
}

// DefaultDockerfile is the Dockerfile of a context without -f: "Dockerfile",
// or "dockerfile" when only that exists (as BuildKit and docker do,
// moby/moby#10858).
func DefaultDockerfile(contextDir string) string {
	p := filepath.Join(contextDir, "Dockerfile")
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		lower := filepath.Join(contextDir, "dockerfile")
		if _, err := os.Lstat(lower); err == nil {
			return lower
		}
	}
	return p
}

// SplitList splits comma-separated flag values ("a,b" "c" -> a b c),
// dropping empty ones.
func SplitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

// ParseBuildArgs turns K=V flags into a map; a bare K takes its value from
// the environment, as docker build does (and is skipped when unset).
func ParseBuildArgs(args []string) (map[string]string, error) {
	m := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return nil, fmt.Errorf("--build-arg %q: missing name", a)
		}
		if !ok {
			ev, set := os.LookupEnv(k)
			if !set {
				continue
			}
			v = ev
		}
		m[k] = v
	}
	return m, nil
}

// LoadDockerfile checks that req.ContextDir is a directory and reads the
// Dockerfile at path ("" = DefaultDockerfile of the context) into req, as
// ReadDockerfile does; it returns the path it read.
func LoadDockerfile(ctx context.Context, req *Request, path string) (string, error) {
	if fi, err := os.Stat(req.ContextDir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("unable to prepare context: path %q not found or not a directory", req.ContextDir)
	}
	if path == "" {
		path = DefaultDockerfile(req.ContextDir)
	}
	return path, ReadDockerfile(ctx, req, path)
}

// Targets lists the stages of the Dockerfile at path, read as a build
// reads it (confined to its directory, bounded).
func Targets(ctx context.Context, path string) ([]dockerfile.Target, error) {
	req := Request{ContextDir: filepath.Dir(path)}
	if err := ReadDockerfile(ctx, &req, path); err != nil {
		return nil, err
	}
	return dockerfile.ListTargets(dockerfile.Options{Dockerfile: req.Dockerfile, Filename: filepath.Base(path)})
}
