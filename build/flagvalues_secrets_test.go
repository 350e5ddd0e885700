package build

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseSecrets checks buildx's --secret syntax: id with src/source (a
// file) or env (a variable), the type key, the bare id that prefers the
// variable of that name and falls back to the file, and the errors.
func TestParseSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s.txt")
	if err := os.WriteFile(file, []byte("from-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A file named like the id, for the bare "id=" form.
	bare := filepath.Join(dir, "bareid")
	if err := os.WriteFile(bare, []byte("bare-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BUILDER_TEST_SECRET_ENV", "from-env")
	t.Setenv("BUILDER_TEST_SECRET_ID", "id-env")
	os.Unsetenv("BUILDER_TEST_SECRET_UNSET")

	tests := []struct {
		name  string
		specs []string
		want  map[string]string
		err   string
	}{
		{name: "src", specs: []string{"id=a,src=" + file}, want: map[string]string{"a": "from-file"}},
		{name: "source", specs: []string{"id=a,source=" + file}, want: map[string]string{"a": "from-file"}},
		{name: "type file", specs: []string{"type=file,id=a,src=" + file}, want: map[string]string{"a": "from-file"}},
		{name: "type file defaults src to id", specs: []string{"type=file,id=" + bare}, want: map[string]string{bare: "bare-file"}},
		{name: "env", specs: []string{"id=a,env=BUILDER_TEST_SECRET_ENV"}, want: map[string]string{"a": "from-env"}},
		{name: "type env with env", specs: []string{"type=env,id=a,env=BUILDER_TEST_SECRET_ENV"}, want: map[string]string{"a": "from-env"}},
		// buildx: with type=env, src names the variable.
		{name: "type env with src", specs: []string{"type=env,id=a,src=BUILDER_TEST_SECRET_ENV"}, want: map[string]string{"a": "from-env"}},
		{name: "type env defaults to id", specs: []string{"type=env,id=BUILDER_TEST_SECRET_ID"}, want: map[string]string{"BUILDER_TEST_SECRET_ID": "id-env"}},
		{name: "bare id prefers the env var", specs: []string{"id=BUILDER_TEST_SECRET_ID"}, want: map[string]string{"BUILDER_TEST_SECRET_ID": "id-env"}},
		{name: "bare id falls back to the file", specs: []string{"id=" + bare}, want: map[string]string{bare: "bare-file"}},
		{name: "quoted csv", specs: []string{`"id=a","src=` + file + `"`}, want: map[string]string{"a": "from-file"}},
		{name: "several", specs: []string{"id=a,src=" + file, "id=b,env=BUILDER_TEST_SECRET_ENV"}, want: map[string]string{"a": "from-file", "b": "from-env"}},
		{name: "case-insensitive keys", specs: []string{"ID=a,SRC=" + file}, want: map[string]string{"a": "from-file"}},
		{name: "none", specs: nil, want: map[string]string{}},

		{name: "missing id", specs: []string{"src=" + file}, err: "id is required"},
		{name: "not key=value", specs: []string{"id=a,oops"}, err: `"oops" is not key=value`},
		{name: "unknown key", specs: []string{"id=a,colour=red"}, err: `unknown key "colour"`},
		{name: "unknown type", specs: []string{"id=a,type=ssh"}, err: `unsupported type "ssh"`},
		{name: "missing file", specs: []string{"id=a,src=" + filepath.Join(dir, "nope")}, err: "reading " + filepath.Join(dir, "nope")},
		{name: "unset env", specs: []string{"id=a,env=BUILDER_TEST_SECRET_UNSET"}, err: "BUILDER_TEST_SECRET_UNSET is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSecrets(tt.specs)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseSecrets(%q) error = %v, want one containing %q", tt.specs, err, tt.err)
				}
				// The error must name the flag but never a value.
				if strings.Contains(err.Error(), "from-file") || strings.Contains(err.Error(), "from-env") {
					t.Errorf("error %q carries a secret value", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecrets(%q): %v", tt.specs, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ParseSecrets(%q) = %d secrets, want %d", tt.specs, len(got), len(tt.want))
			}
			for id, v := range tt.want {
				if string(got[id]) != v {
					t.Errorf("secret %q = %q, want %q", id, got[id], v)
				}
			}
		})
	}
}

// TestParseSSH checks buildx's --ssh syntax: "default" and a bare id take
// $SSH_AUTH_SOCK, id=SOCKET[,SOCKET] forwards the first socket, and only
// unix sockets are accepted (key files are not supported).
func TestParseSSH(t *testing.T) {
	dir := t.TempDir()
	listen := func(name string) string {
		p := filepath.Join(dir, name)
		ln, err := net.Listen("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return p
	}
	agent, other := listen("agent.sock"), listen("other.sock")
	keyFile := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyFile, []byte("not a socket"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		authEnv string // SSH_AUTH_SOCK
		specs   []string
		want    map[string]string
		err     string
	}{
		{name: "default from SSH_AUTH_SOCK", authEnv: agent, specs: []string{"default"}, want: map[string]string{"default": agent}},
		{name: "bare id from SSH_AUTH_SOCK", authEnv: agent, specs: []string{"gitlab"}, want: map[string]string{"gitlab": agent}},
		{name: "default=socket", specs: []string{"default=" + agent}, want: map[string]string{"default": agent}},
		{name: "id=socket,socket takes the first", specs: []string{"x=" + other + "," + agent}, want: map[string]string{"x": other}},
		{name: "several ids", specs: []string{"default=" + agent, "x=" + other}, want: map[string]string{"default": agent, "x": other}},
		{name: "none", specs: nil, want: map[string]string{}},

		{name: "default without SSH_AUTH_SOCK", specs: []string{"default"}, err: "SSH_AUTH_SOCK is not set"},
		{name: "empty socket without SSH_AUTH_SOCK", specs: []string{"default="}, err: "SSH_AUTH_SOCK is not set"},
		{name: "missing id", specs: []string{"=" + agent}, err: "missing id"},
		{name: "missing socket", specs: []string{"default=" + filepath.Join(dir, "gone.sock")}, err: "gone.sock"},
		{name: "key file", specs: []string{"default=" + keyFile}, err: "is not a unix socket"},
		{name: "directory", specs: []string{"default=" + dir}, err: "is not a unix socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SSH_AUTH_SOCK", tt.authEnv)
			got, err := ParseSSH(tt.specs)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseSSH(%q) error = %v, want one containing %q", tt.specs, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSSH(%q): %v", tt.specs, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ParseSSH(%q) = %v, want %v", tt.specs, got, tt.want)
			}
			for id, p := range tt.want {
				if got[id] != p {
					t.Errorf("ssh %q = %q, want %q", id, got[id], p)
				}
			}
		})
	}
}
