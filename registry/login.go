package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/builderdev/builder/snapshot/fsutil"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrUnauthorized is returned (wrapped) by CheckLogin when the registry
// rejects the credentials.
var ErrUnauthorized = errors.New("unauthorized: incorrect username or password")

// dockerHubKey is the key Docker uses for Docker Hub in config.json.
const dockerHubKey = "https://index.docker.io/v1/"

// ConfigDir is the directory of the Docker client configuration:
// $DOCKER_CONFIG, else ~/.docker.
func ConfigDir() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".docker")
}

// ServerKey returns the registry host of s (a host[:port], a reference, or
// a URL) as Docker keys it in config.json: the host, or
// https://index.docker.io/v1/ for Docker Hub.
func ServerKey(s string) (string, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s = strings.TrimSuffix(s, "/")
	if s == "" || s == "index.docker.io/v1" {
		return dockerHubKey, nil
	}
	host, _, _ := strings.Cut(s, "/")
	reg, err := name.NewRegistry(host)
	if err != nil {
		return "", fmt.Errorf("registry %q: %w", s, err)
	}
	if reg.RegistryStr() == name.DefaultRegistry {
		return dockerHubKey, nil
	}
	return reg.RegistryStr(), nil
}

// CheckLogin verifies user and password against the registry server
// (host[:port]): it answers the /v2/ challenge (basic, or a bearer token
// fetched with the credentials) and needs 200 from /v2/. The credentials
// are never part of an error.
func (c *Client) CheckLogin(ctx context.Context, server, user, pass string) error {
	if c.transportErr != nil {
		return c.transportErr
	}
	key, err := ServerKey(server)
	if err != nil {
		return err
	}
	host := key
	if key == dockerHubKey {
		host = name.DefaultRegistry
	}
	var opts []name.Option
	if c.allowHTTP(host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return fmt.Errorf("registry %s: %w", host, err)
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})
	tr, err := transport.NewWithContext(ctx, reg, auth, c.transport, nil)
	if err != nil {
		return fmt.Errorf("login to %s: %w", host, loginError(err))
	}
	// Ping found the scheme; probe both in the order it tries them.
	var resp *http.Response
	for _, scheme := range schemes(reg) {
		req, rerr := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+reg.RegistryStr()+"/v2/", nil)
		if rerr != nil {
			return fmt.Errorf("login to %s: %w", host, rerr)
		}
		resp, err = (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("login to %s: %w", host, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("login to %s: %w", host, ErrUnauthorized)
	default:
		return fmt.Errorf("login to %s: /v2/ answered %s", host, resp.Status)
	}
}

func schemes(reg name.Registry) []string {
	if reg.Scheme() == "http" {
		return []string{"https", "http"}
	}
	return []string{"https"}
}

// loginError maps a rejected token or basic challenge to ErrUnauthorized.
func loginError(err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return ErrUnauthorized
	}
	return simplify(err)
}

// dockerConfig is config.json: the fields login changes, and the rest kept
// as they are.
type dockerConfig struct {
	raw         map[string]json.RawMessage
	auths       map[string]json.RawMessage
	credsStore  string
	credHelpers map[string]string
}

func readDockerConfig(path string) (*dockerConfig, error) {
	c := &dockerConfig{raw: map[string]json.RawMessage{}, auths: map[string]json.RawMessage{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(b, &c.raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if a, ok := c.raw["auths"]; ok {
		if err := json.Unmarshal(a, &c.auths); err != nil {
			return nil, fmt.Errorf("%s: auths: %w", path, err)
		}
	}
	if a, ok := c.raw["credsStore"]; ok {
		json.Unmarshal(a, &c.credsStore)
	}
	if a, ok := c.raw["credHelpers"]; ok {
		json.Unmarshal(a, &c.credHelpers)
	}
	if c.auths == nil {
		c.auths = map[string]json.RawMessage{}
	}
	return c, nil
}

func (c *dockerConfig) helper(key string) string {
	if h := c.credHelpers[key]; h != "" {
		return h
	}
	return c.credsStore
}

func (c *dockerConfig) write(path string) error {
	a, err := json.Marshal(c.auths)
	if err != nil {
		return err
	}
	c.raw["auths"] = a
	b, err := json.MarshalIndent(c.raw, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, 0o600, append(b, '\n'))
}

// StoreCredentials saves user and password for server in the Docker config
// of dir (see ConfigDir): through the credential helper config.json names
// for it (credHelpers, credsStore), else base64 in "auths" like docker
// login. It returns where they went.
func StoreCredentials(dir, server, user, pass string) (string, error) {
	key, err := ServerKey(server)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "config.json")
	cfg, err := readDockerConfig(path)
	if err != nil {
		return "", fmt.Errorf("reading docker config: %w", err)
	}
	if h := cfg.helper(key); h != "" {
		in, _ := json.Marshal(map[string]string{"ServerURL": key, "Username": user, "Secret": pass})
		if err := runHelper(h, "store", in); err != nil {
			return "", err
		}
		return "docker-credential-" + h, nil
	}
	entry, err := json.Marshal(map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))})
	if err != nil {
		return "", err
	}
	cfg.auths[key] = entry
	if err := cfg.write(path); err != nil {
		return "", fmt.Errorf("writing docker config %s: %w", path, err)
	}
	return path, nil
}

// RemoveCredentials deletes the credentials of server from the Docker
// config of dir (and its credential helper). It reports whether there were
// any.
func RemoveCredentials(dir, server string) (bool, error) {
	key, err := ServerKey(server)
	if err != nil {
		return false, err
	}
	path := filepath.Join(dir, "config.json")
	cfg, err := readDockerConfig(path)
	if err != nil {
		return false, fmt.Errorf("reading docker config: %w", err)
	}
	found := false
	if h := cfg.helper(key); h != "" {
		if err := runHelper(h, "erase", []byte(key)); err == nil {
			found = true
		}
	}
	if _, ok := cfg.auths[key]; ok {
		delete(cfg.auths, key)
		if err := cfg.write(path); err != nil {
			return false, fmt.Errorf("writing docker config %s: %w", path, err)
		}
		found = true
	}
	return found, nil
}

// runHelper runs docker-credential-NAME ACTION with in on stdin.
func runHelper(helper, action string, in []byte) error {
	cmd := exec.Command("docker-credential-"+helper, action)
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return fmt.Errorf("credential helper docker-credential-%s %s: %v: %s", helper, action, err, msg)
	}
	return nil
}
