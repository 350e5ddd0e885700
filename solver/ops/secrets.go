package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/llb"
)

// ErrSecretNotFound is returned by a SecretStore for an unknown id,
// wrapped as BuildKit words it: "secret ID: not found".
var ErrSecretNotFound = errors.New("not found")

// SecretStore serves the values of RUN --mount=type=secret. Secret values
// are never part of a cache key, a layer, the image config or the progress
// output: the exec op only names the id.
type SecretStore interface {
	// GetSecret returns the value of secret id, or an error wrapping
	// ErrSecretNotFound.
	GetSecret(ctx context.Context, id string) ([]byte, error)
}

// SecretMap is a SecretStore held in memory.
type SecretMap map[string][]byte

// GetSecret implements SecretStore.
func (m SecretMap) GetSecret(_ context.Context, id string) ([]byte, error) {
	v, ok := m[id]
	if !ok {
		return nil, fmt.Errorf("secret %s: %w", id, ErrSecretNotFound)
	}
	return v, nil
}

func (w *Worker) getSecret(ctx context.Context, id string) ([]byte, error) {
	if w.opt.Secrets == nil {
		return nil, fmt.Errorf("secret %s: %w", id, ErrSecretNotFound)
	}
	return w.opt.Secrets.GetSecret(ctx, id)
}

// secretMount exposes a secret as a read-only file at m.Dest and/or as the
// environment variable m.SecretEnv. The file lives in a private directory
// (0700) on a memory filesystem (secretTempDir: never on a disk, and a
// killed builder's leftovers go at the next start) for the duration of
// the step only, bind-mounted read-only, nosuid, nodev, noexec; the file
// never enters the step's snapshot (the sandbox removes the empty mount
// point it made).
// A missing secret that is not required leaves the mount out, as BuildKit
// does.
func (w *Worker) secretMount(ctx context.Context, m llb.Mount) (mountSetup, func(), error) {
	data, err := w.getSecret(ctx, m.SecretID)
	if err != nil {
		if errors.Is(err, ErrSecretNotFound) && !m.Required {
			return mountSetup{}, nil, nil
		}
		return mountSetup{}, nil, fmt.Errorf("secret mount %s: %w", mountName(m), err)
	}
	var setup mountSetup
	if m.SecretEnv != "" {
		setup.secretEnv = append(setup.secretEnv, m.SecretEnv+"="+string(data))
	}
	if m.Dest == "" {
		return setup, nil, nil
	}
	dir, err := secretTempDir()
	if err != nil {
		return mountSetup{}, nil, fmt.Errorf("secret mount %s: %w", m.Dest, err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	f := filepath.Join(dir, "secret")
	if err := writePrivateFile(f, data, m); err != nil {
		return mountSetup{}, cleanup, fmt.Errorf("secret mount %s: %w", m.Dest, err)
	}
	setup.mounts = append(setup.mounts, executor.Mount{Type: "bind", Source: f, Target: m.Dest, Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}})
	return setup, cleanup, nil
}

func mountName(m llb.Mount) string {
	if m.Dest != "" {
		return m.Dest
	}
	return "env " + m.SecretEnv
}

// writePrivateFile writes data to the new file p, owned by m.UID:m.GID
// (default 0:0) with m.Mode (default 0400).
func writePrivateFile(p string, data []byte, m llb.Mount) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return chownChmod(p, m, 0o400)
}

func chownChmod(p string, m llb.Mount, defMode os.FileMode) error {
	uid, gid := 0, 0
	if m.UID != nil {
		uid = *m.UID
	}
	if m.GID != nil {
		gid = *m.GID
	}
	if err := os.Lchown(p, uid, gid); err != nil {
		return err
	}
	mode := defMode
	if m.Mode != nil {
		mode = os.FileMode(*m.Mode & 0o777)
	}
	return os.Chmod(p, mode)
}

// sshMount forwards the ssh agent socket SSH[m.SecretID] into the sandbox:
// a proxy socket (owned by m.UID:m.GID, mode m.Mode, default 0600) in a
// private directory relays every connection to the agent, so the host
// socket's own path and permissions stay out of the sandbox. The proxy
// socket is bind-mounted at m.Dest, and SSH_AUTH_SOCK points to it unless
// the step sets it.
func (w *Worker) sshMount(ctx context.Context, m llb.Mount) (mountSetup, func(), error) {
	sock, ok := w.opt.SSH[m.SecretID]
	if !ok {
		if !m.Required {
			return mountSetup{}, nil, nil
		}
		return mountSetup{}, nil, fmt.Errorf("ssh mount %s: no ssh agent socket %q was forwarded (use --ssh %s=SOCKET)", m.Dest, m.SecretID, m.SecretID)
	}
	dir, err := w.tempDir("ssh-")
	if err != nil {
		return mountSetup{}, nil, fmt.Errorf("ssh mount %s: %w", m.Dest, err)
	}
	p := filepath.Join(dir, "agent.sock")
	px, err := startSocketProxy(p, sock)
	if err != nil {
		os.RemoveAll(dir)
		return mountSetup{}, nil, fmt.Errorf("ssh mount %s: %w", m.Dest, err)
	}
	cleanup := func() {
		px.close()
		os.RemoveAll(dir)
	}
	if err := chownChmod(p, m, 0o600); err != nil {
		return mountSetup{}, cleanup, fmt.Errorf("ssh mount %s: %w", m.Dest, err)
	}
	return mountSetup{
		mounts: []executor.Mount{{Type: "bind", Source: p, Target: m.Dest, Options: []string{"bind", "nosuid", "nodev", "noexec"}}},
		env:    []string{"SSH_AUTH_SOCK=" + m.Dest},
	}, cleanup, nil
}

// socketProxy relays connections on a unix socket to another one.
type socketProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startSocketProxy(listen, upstream string) (*socketProxy, error) {
	ln, err := net.Listen("unix", listen)
	if err != nil {
		return nil, err
	}
	px := &socketProxy{ln: ln, conns: map[net.Conn]bool{}}
	px.wg.Add(1)
	go px.serve(upstream)
	return px, nil
}

func (px *socketProxy) track(c net.Conn, add bool) bool {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.conns == nil {
		return false
	}
	if add {
		px.conns[c] = true
	} else {
		delete(px.conns, c)
	}
	return true
}

func (px *socketProxy) serve(upstream string) {
	defer px.wg.Done()
	for {
		c, err := px.ln.Accept()
		if err != nil {
			return
		}
		if !px.track(c, true) {
			c.Close()
			return
		}
		px.wg.Add(1)
		go func() {
			defer px.wg.Done()
			defer func() { px.track(c, false); c.Close() }()
			u, err := net.Dial("unix", upstream)
			if err != nil {
				return
			}
			if !px.track(u, true) {
				u.Close()
				return
			}
			defer func() { px.track(u, false); u.Close() }()
			done := make(chan struct{}, 2)
			relay := func(dst, src net.Conn) {
				io.Copy(dst, src)
				if cw, ok := dst.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				}
				done <- struct{}{}
			}
			go relay(u, c)
			go relay(c, u)
			<-done
			<-done
		}()
	}
}

// close stops the proxy and its connections and waits for its goroutines.
func (px *socketProxy) close() {
	px.ln.Close()
	px.mu.Lock()
	conns := px.conns
	px.conns = nil
	px.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	px.wg.Wait()
}
