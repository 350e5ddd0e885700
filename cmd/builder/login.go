package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/builderdev/builder/internal/pty"
	"github.com/builderdev/builder/registry"
	"github.com/spf13/cobra"
)

// LoginOptions are the flags of `builder login`.
type LoginOptions struct {
	Username      string
	Password      string
	PasswordStdin bool
	Registry      RegistryFlags
}

func newLoginCommand() *cobra.Command {
	var o LoginOptions
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			return Login(cmd.Context(), o, server, os.Stdin, os.Stdout, os.Stderr)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Username, "username", "u", "", "Username")
	f.StringVarP(&o.Password, "password", "p", "", "Password or Personal Access Token (PAT)")
	f.BoolVar(&o.PasswordStdin, "password-stdin", false, "Take the Password or Personal Access Token (PAT) from stdin")
	o.Registry.add(f)
	return cmd
}

// Login checks the credentials against server's /v2/ and stores them in
// the Docker config (DOCKER_CONFIG or ~/.docker/config.json).
func Login(ctx context.Context, o LoginOptions, server string, stdin io.Reader, stdout, stderr io.Writer) error {
	if o.Password != "" && o.PasswordStdin {
		return errors.New("--password and --password-stdin are mutually exclusive")
	}
	in := bufio.NewReader(stdin)
	if o.PasswordStdin {
		if o.Username == "" {
			return errors.New("must provide --username with --password-stdin")
		}
		b, err := io.ReadAll(in)
		if err != nil {
			return fmt.Errorf("reading the password from stdin: %w", err)
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	} else if o.Password != "" {
		fmt.Fprintln(stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
	}
	// As docker login: without a password there is a prompt, and a prompt
	// needs a terminal (`cat | builder login` would read the password
	// from a pipe, echoed nowhere, or not at all).
	if o.Password == "" && !isTerminal(stdin) {
		return errors.New("Cannot perform an interactive login from a non TTY device")
	}
	if o.Username == "" {
		fmt.Fprint(stdout, "Username: ")
		line, err := in.ReadString('\n')
		if err != nil && line == "" {
			return errors.New("username is required")
		}
		o.Username = strings.TrimSpace(line)
	}
	if o.Password == "" && !o.PasswordStdin {
		// As docker: what is typed is not shown (the echo goes off
		// before the prompt, so nothing typed after it shows).
		restore := func() error { return nil }
		if f, ok := stdin.(*os.File); ok {
			if r, err := pty.NoEcho(int(f.Fd())); err == nil {
				restore = r
			}
		}
		fmt.Fprint(stdout, "Password: ")
		line, err := in.ReadString('\n')
		_ = restore()
		fmt.Fprintln(stdout) // the Enter that was not echoed
		if err != nil && line == "" {
			return errors.New("password is required")
		}
		o.Password = strings.TrimRight(line, "\r\n")
	}
	if o.Username == "" || o.Password == "" {
		return errors.New("username and password are required")
	}
	key, err := registry.ServerKey(server)
	if err != nil {
		return err
	}
	// A login needs no blob store.
	reg := registry.New(o.Registry.options(nil, nil))
	if err := reg.CheckLogin(ctx, key, o.Username, o.Password); err != nil {
		return err
	}
	if _, err := registry.StoreCredentials(registry.ConfigDir(), key, o.Username, o.Password); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "Login Succeeded")
	return nil
}

// isTerminal reports whether r is a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && pty.IsTerminal(int(f.Fd()))
}

func newLogoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			return Logout(server, os.Stdout)
		},
	}
}

// Logout removes the stored credentials of server.
func Logout(server string, stdout io.Writer) error {
	key, err := registry.ServerKey(server)
	if err != nil {
		return err
	}
	found, err := registry.RemoveCredentials(registry.ConfigDir(), key)
	if err != nil {
		return err
	}
	if !found {
		fmt.Fprintf(stdout, "Not logged in to %s\n", key)
		return nil
	}
	fmt.Fprintf(stdout, "Removing login credentials for %s\n", key)
	return nil
}
