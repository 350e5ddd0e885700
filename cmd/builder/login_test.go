package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/pty"
)

// loginRegistry is a registry whose /v2/ takes user:pass by basic auth.
func loginRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); ok && u == "user" && p == "pass" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestLoginNeedsTTYToPrompt: as docker login, a login that would prompt for
// the password refuses when stdin is not a terminal (no prompt is printed,
// nothing is read or stored), while --password-stdin and -p need none;
// on a terminal the prompts still work.
func TestLoginNeedsTTYToPrompt(t *testing.T) {
	server := loginRegistry(t)
	const refusal = "Cannot perform an interactive login from a non TTY device"
	for _, tc := range []struct {
		name    string
		o       LoginOptions
		stdin   string
		wantErr string
	}{
		{"no flags", LoginOptions{}, "user\npass\n", refusal},
		{"username only", LoginOptions{Username: "user"}, "pass\n", refusal},
		{"password-stdin without username", LoginOptions{PasswordStdin: true}, "pass\n", "must provide --username with --password-stdin"},
		{"password-stdin", LoginOptions{Username: "user", PasswordStdin: true}, "pass\n", ""},
		{"password-stdin, CRLF", LoginOptions{Username: "user", PasswordStdin: true}, "pass\r\n", ""},
		{"empty password-stdin", LoginOptions{Username: "user", PasswordStdin: true}, "", refusal},
		{"password flag, username read from stdin", LoginOptions{Password: "pass"}, "user\n", ""},
		{"both flags", LoginOptions{Username: "user", Password: "pass"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := t.TempDir()
			t.Setenv("DOCKER_CONFIG", cfg)
			var stdout, stderr bytes.Buffer
			err := Login(context.Background(), tc.o, server, strings.NewReader(tc.stdin), &stdout, &stderr)
			_, statErr := os.Stat(filepath.Join(cfg, "config.json"))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(stdout.String(), "Username") || strings.Contains(stdout.String(), "Password") {
					t.Errorf("prompted without a terminal: %q", stdout.String())
				}
				if statErr == nil {
					t.Error("credentials were stored")
				}
				return
			}
			if err != nil {
				t.Fatalf("login: %v (stdout %q)", err, stdout.String())
			}
			if !strings.HasSuffix(stdout.String(), "Login Succeeded\n") || statErr != nil {
				t.Errorf("stdout %q, config: %v", stdout.String(), statErr)
			}
		})
	}

	// On a terminal both prompts are shown and answered.
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	go io.Copy(io.Discard, master) // the terminal's echo
	if _, err := master.Write([]byte("user\npass\n")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	var stdout bytes.Buffer
	if err := Login(context.Background(), LoginOptions{}, server, slave, &stdout, io.Discard); err != nil {
		t.Fatalf("login on a terminal: %v (stdout %q)", err, stdout.String())
	}
	if got := stdout.String(); !strings.Contains(got, "Username: ") || !strings.Contains(got, "Password: ") || !strings.HasSuffix(got, "Login Succeeded\n") {
		t.Errorf("stdout %q", got)
	}
}

// TestLoginPasswordNotEchoed: on a terminal the password typed at the
// prompt is not shown, as with docker login; the username is.
func TestLoginPasswordNotEchoed(t *testing.T) {
	server := loginRegistry(t)
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	var echoed bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&echoed, master); close(copied) }()
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	promptR, promptW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer promptR.Close()
	done := make(chan error, 1)
	go func() {
		done <- Login(context.Background(), LoginOptions{}, server, slave, promptW, io.Discard)
		promptW.Close()
	}()
	prompts := bufio.NewReader(promptR)
	typeAfter := func(prompt, line string) {
		t.Helper()
		if got, err := prompts.ReadString(' '); err != nil || got != prompt {
			t.Fatalf("prompt %q, %v; want %q", got, err, prompt)
		}
		if _, err := master.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	typeAfter("Username: ", "user\n")
	typeAfter("Password: ", "pass\n")
	if err := <-done; err != nil {
		t.Fatalf("login: %v", err)
	}
	slave.Close() // the terminal's output ends
	<-copied
	if got := echoed.String(); !strings.Contains(got, "user") || strings.Contains(got, "pass") {
		t.Errorf("the terminal showed %q: want the username and not the password", got)
	}
}
