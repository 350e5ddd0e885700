package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/builderdev/builder/internal/fsutil"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/credentials"
	"github.com/docker/cli/cli/config/types"
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

// dockerConfig is config.json as docker/cli's configfile reads it, plus
// the top-level keys configfile does not know, which Save writes back as
// they were (configfile.Save alone would drop them), as are the auths
// entries login does not change (which may hold keys configfile drops).
type dockerConfig struct {
	*configfile.ConfigFile
	raw      map[string]json.RawMessage
	rawAuths map[string]json.RawMessage
	loaded   map[string]types.AuthConfig
}

func readDockerConfig(path string) (*dockerConfig, error) {
	c := &dockerConfig{ConfigFile: configfile.New(path), raw: map[string]json.RawMessage{}}
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
	if err := c.LoadFromReader(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if a, ok := c.raw["auths"]; ok {
		if err := json.Unmarshal(a, &c.rawAuths); err != nil {
			return nil, fmt.Errorf("%s: auths: %w", path, err)
		}
	}
	c.loaded = maps.Clone(c.GetAuthConfigs())
	return c, nil
}

// helper is the credential helper config.json names for key (credHelpers,
// else credsStore), as docker picks it.
func (c *dockerConfig) helper(key string) string {
	if h, ok := c.CredentialHelpers[key]; ok {
		return h
	}
	return c.CredentialsStore
}

// store is the credentials store of key: the helper's, else the file.
func (c *dockerConfig) store(key string) credentials.Store {
	if h := c.helper(key); h != "" {
		return credentials.NewNativeStore(c, h)
	}
	return credentials.NewFileStore(c)
}

// Save writes what configfile knows over the file's other keys, atomically
// and private (0600). The credentials stores call it.
func (c *dockerConfig) Save() error {
	var known bytes.Buffer
	if err := c.SaveToWriter(&known); err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(known.Bytes(), &fields); err != nil {
		return err
	}
	var auths map[string]json.RawMessage
	if err := json.Unmarshal(fields["auths"], &auths); err != nil {
		return err
	}
	for k, ac := range c.GetAuthConfigs() {
		if old, ok := c.loaded[k]; ok && old == ac && c.rawAuths[k] != nil {
			auths[k] = c.rawAuths[k]
		}
	}
	a, err := json.Marshal(auths)
	if err != nil {
		return err
	}
	fields["auths"] = a
	out := make(map[string]json.RawMessage, len(c.raw)+len(fields))
	maps.Copy(out, c.raw)
	maps.Copy(out, fields)
	b, err := json.MarshalIndent(out, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.Filename), 0o700); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(c.Filename, 0o600, append(b, '\n')); err != nil {
		return fmt.Errorf("writing docker config %s: %w", c.Filename, err)
	}
	return nil
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
	cfg, err := readDockerConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return "", fmt.Errorf("reading docker config: %w", err)
	}
	auth := types.AuthConfig{ServerAddress: key, Username: user, Password: pass}
	if err := cfg.store(key).Store(auth); err != nil {
		return "", credentialError(cfg.helper(key), "store", err)
	}
	if h := cfg.helper(key); h != "" {
		return "docker-credential-" + h, nil
	}
	return cfg.Filename, nil
}

// RemoveCredentials deletes the credentials of server from the Docker
// config of dir (and its credential helper). It reports whether there were
// any.
func RemoveCredentials(dir, server string) (bool, error) {
	key, err := ServerKey(server)
	if err != nil {
		return false, err
	}
	cfg, err := readDockerConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return false, fmt.Errorf("reading docker config: %w", err)
	}
	_, inFile := cfg.GetAuthConfigs()[key]
	found := false
	if h := cfg.helper(key); h != "" {
		// The native store erases the file entry after the helper's.
		found = cfg.store(key).Erase(key) == nil
	}
	if _, ok := cfg.GetAuthConfigs()[key]; ok {
		if err := credentials.NewFileStore(cfg).Erase(key); err != nil {
			return false, err
		}
	}
	return found || inFile, nil
}

// credentialError names the helper that failed.
func credentialError(helper, action string, err error) error {
	if helper == "" {
		return err
	}
	return fmt.Errorf("credential helper docker-credential-%s %s: %w", helper, action, err)
}
