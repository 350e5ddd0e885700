package run

import (
	"reflect"
	"strings"
	"testing"

	"github.com/builderdev/builder/executor"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestRunSpec: the process of builder run is made from the image config
// as docker run makes it.
func TestRunSpec(t *testing.T) {
	t.Parallel()
	cfg := &v1.ConfigFile{Config: v1.Config{Entrypoint: []string{"/entry"}, Cmd: []string{"default"},
		Env: []string{"A=1", "B=2"}, WorkingDir: "/w", User: "app"}}
	empty := ""
	sh := "/bin/sh"
	for _, tt := range []struct {
		name    string
		o       Options
		cfg     *v1.ConfigFile
		args    []string
		env     []string
		cwd     string
		user    string
		network executor.Network
		wantErr string
	}{
		{name: "image defaults", o: Options{}, args: []string{"/entry", "default"},
			env: []string{"A=1", "B=2", "PATH=" + registryDefaultPath}, cwd: "/w", user: "app", network: executor.NetworkHost},
		{name: "args replace Cmd", o: Options{Args: []string{"x", "y"}}, args: []string{"/entry", "x", "y"},
			env: []string{"A=1", "B=2", "PATH=" + registryDefaultPath}, cwd: "/w", user: "app", network: executor.NetworkHost},
		{name: "--entrypoint drops Cmd", o: Options{Entrypoint: &sh}, args: []string{"/bin/sh"},
			env: []string{"A=1", "B=2", "PATH=" + registryDefaultPath}, cwd: "/w", user: "app", network: executor.NetworkHost},
		{name: "--entrypoint '' and args", o: Options{Entrypoint: &empty, Args: []string{"ls"}}, args: []string{"ls"},
			env: []string{"A=1", "B=2", "PATH=" + registryDefaultPath}, cwd: "/w", user: "app", network: executor.NetworkHost},
		{name: "-e overrides, -t sets TERM, -w, -u, --network none",
			o:    Options{Env: []string{"A=x"}, Tty: true, Workdir: "/other", User: "0:0", Network: "none"},
			args: []string{"/entry", "default"}, env: []string{"B=2", "PATH=" + registryDefaultPath, "A=x", "TERM=xterm"},
			cwd: "/other", user: "0:0", network: executor.NetworkNone},
		{name: "relative workdir", o: Options{Workdir: "rel"}, wantErr: "not absolute"},
		{name: "no command", o: Options{}, cfg: &v1.ConfigFile{}, wantErr: "no command specified"},
	} {
		c := cfg
		if tt.cfg != nil {
			c = tt.cfg
		}
		s, err := runSpec(tt.o, c)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(s.Args, tt.args) || !reflect.DeepEqual(s.Env, tt.env) || s.Cwd != tt.cwd || s.User != tt.user || s.Network != tt.network {
			t.Errorf("%s: args %q env %q cwd %q user %q network %v", tt.name, s.Args, s.Env, s.Cwd, s.User, s.Network)
		}
	}
	// The image's config is never modified.
	if !reflect.DeepEqual(cfg.Config.Env, []string{"A=1", "B=2"}) {
		t.Errorf("the image's Env changed: %q", cfg.Config.Env)
	}
}

func TestParseEnv(t *testing.T) {
	t.Setenv("RUN_TEST_SET", "from-env")
	got, err := ParseEnv([]string{"A=1", "RUN_TEST_SET", "RUN_TEST_UNSET_X", "B="})
	if err != nil || !reflect.DeepEqual(got, []string{"A=1", "RUN_TEST_SET=from-env", "B="}) {
		t.Errorf("ParseEnv = %q, %v", got, err)
	}
	if _, err := ParseEnv([]string{"=x"}); err == nil || !strings.Contains(err.Error(), "missing name") {
		t.Errorf("=x: %v, want a missing name error", err)
	}
}
