package registry

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

func TestServerKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", dockerHubKey},
		{"docker.io", dockerHubKey},
		{"index.docker.io", dockerHubKey},
		{"https://index.docker.io/v1/", dockerHubKey},
		{"127.0.0.1:5000", "127.0.0.1:5000"},
		{"https://ghcr.io", "ghcr.io"},
		{"ghcr.io/owner/repo", "ghcr.io"},
	}
	for _, tt := range tests {
		if got, err := ServerKey(tt.in); err != nil || got != tt.want {
			t.Errorf("ServerKey(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestStoreAndRemoveCredentials(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	path := filepath.Join(dir, "config.json")
	os.WriteFile(path, []byte(`{"auths":{"other.io":{"auth":"eDp5"}},"psFormat":"table"}`), 0o644)
	if _, err := StoreCredentials(dir, "127.0.0.1:5999", "u", "p@ss"); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode %v", fi.Mode())
	}
	var cfg map[string]json.RawMessage
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &cfg); err != nil || string(cfg["psFormat"]) != `"table"` || !strings.Contains(string(cfg["auths"]), "other.io") {
		t.Fatalf("other settings lost: %s", b)
	}
	reg, _ := name.NewRegistry("127.0.0.1:5999")
	a, err := authn.DefaultKeychain.Resolve(reg)
	if err != nil {
		t.Fatal(err)
	}
	ac, _ := a.Authorization()
	if ac.Username != "u" || ac.Password != "p@ss" {
		t.Fatalf("keychain found %q", ac.Username)
	}
	found, err := RemoveCredentials(dir, "127.0.0.1:5999")
	if err != nil || !found {
		t.Fatalf("RemoveCredentials = %v, %v", found, err)
	}
	b, _ = os.ReadFile(path)
	if strings.Contains(string(b), "5999") || !strings.Contains(string(b), "other.io") {
		t.Fatalf("after logout: %s", b)
	}
	if found, _ := RemoveCredentials(dir, "127.0.0.1:5999"); found {
		t.Error("second logout found credentials")
	}
}

// TestCredentialHelper: with credsStore set, credentials go to the helper,
// not into config.json.
func TestCredentialHelper(t *testing.T) {
	dir := t.TempDir()
	bin := t.TempDir()
	got := filepath.Join(dir, "helper-input")
	script := "#!/bin/sh\necho \"$1\" >> " + got + "\ncat >> " + got + "\n"
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-fake"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"credsStore":"fake"}`), 0o600)
	where, err := StoreCredentials(dir, "reg.example:443", "u", "secret")
	if err != nil || where != "docker-credential-fake" {
		t.Fatalf("StoreCredentials = %q, %v", where, err)
	}
	if _, err := RemoveCredentials(dir, "reg.example:443"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(got)
	if !strings.Contains(string(b), "store\n") || !strings.Contains(string(b), `"Secret":"secret"`) || !strings.Contains(string(b), "erase\nreg.example:443") {
		t.Fatalf("helper saw %q", b)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if strings.Contains(string(cfg), "secret") {
		t.Fatalf("config.json holds the secret: %s", cfg)
	}
}

// TestLoginKeepsUnknownKeys: login and logout change config.json's auth
// entry for the server and nothing else, keys configfile does not know and
// other registries' credential helpers included.
func TestLoginKeepsUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	orig := `{
	"auths": {"other.io": {"auth": "eDp5", "email": "x@y"}},
	"credHelpers": {"gcr.io": "gcloud"},
	"psFormat": "table",
	"x-unknown": {"nested": [1, "two", {"three": null}]},
	"aFutureSetting": true
}`
	if err := os.WriteFile(path, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	decode := func(b []byte) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("config.json: %v: %s", err, b)
		}
		return m
	}
	want := decode([]byte(orig))

	if _, err := StoreCredentials(dir, "127.0.0.1:5998", "u", "p"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	got := decode(b)
	auths := got["auths"].(map[string]any)
	if e, ok := auths["127.0.0.1:5998"].(map[string]any); !ok || e["auth"] != "dTpw" {
		t.Fatalf("login did not store u:p: %s", b)
	}
	delete(auths, "127.0.0.1:5998")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("login changed other settings:\ngot  %v\nwant %v", got, want)
	}

	if found, err := RemoveCredentials(dir, "127.0.0.1:5998"); err != nil || !found {
		t.Fatalf("RemoveCredentials = %v, %v", found, err)
	}
	b, _ = os.ReadFile(path)
	if got := decode(b); !reflect.DeepEqual(got, want) {
		t.Fatalf("logout did not restore config.json:\ngot  %v\nwant %v", got, want)
	}
}
