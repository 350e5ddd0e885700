package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/solver/ops"
)

// parseSecrets reads buildx --secret values into a secret store:
// "id=x,src=FILE" (also source=, type=file), "id=x,env=VAR" (type=env), and
// a bare "id=x", which reads the env var x when it is set, else the file x.
// The values stay in memory; they never reach a cache key or the output.
func parseSecrets(specs []string) (ops.SecretMap, error) {
	m := ops.SecretMap{}
	for _, s := range specs {
		var id, typ, src, env string
		for _, f := range build.SplitCSV(s) {
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

// parseSSH reads buildx --ssh values: "default" (the agent of
// $SSH_AUTH_SOCK), "id" likewise, or "id=SOCKET[,SOCKET]" (the first
// socket is forwarded).
func parseSSH(specs []string) (map[string]string, error) {
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
