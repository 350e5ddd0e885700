package main

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExitCodesAsDocker runs the binary: builder run exits 127 for a
// command not found and 126 for one not executable; Ctrl-C (SIGINT) of a
// build or a run exits 130.
func TestExitCodesAsDocker(t *testing.T) {
	requireRootE2E(t)
	bin := builderBinary(t)
	dir := t.TempDir()
	ctxDir := filepath.Join(dir, "ctx")
	writeBusyboxContext(t, ctxDir, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
		"slow":       "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo started; sleep 30\"]\n",
	})
	root := filepath.Join(dir, "root")
	if out, err := exec.Command(bin, "build", "--root", root, "-t", "bb", ctxDir).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"nosuchcommand"}, 127},
		{[]string{"/etc"}, 126},
		{[]string{"sh", "-c", "exit 7"}, 7},
	} {
		err := exec.Command(bin, append([]string{"run", "--root", root, "--rm", "bb"}, tc.args...)...).Run()
		if code := exitCode(err); code != tc.code {
			t.Errorf("builder run bb %v: exit code %d (%v), want %d", tc.args, code, err, tc.code)
		}
	}
	interrupt := func(marker string, args ...string) int {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Stdout = os.Stderr
		pr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), marker) {
				cmd.Process.Signal(syscall.SIGINT)
				break
			}
		}
		go func() {
			for sc.Scan() {
			}
		}()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v did not stop after SIGINT", args)
		}
		return exitCode(err)
	}
	if code := interrupt("started", "build", "--root", root, "--progress=plain", "--no-cache", "-f", filepath.Join(ctxDir, "slow"), ctxDir); code != 130 {
		t.Errorf("build interrupted: exit code %d, want 130", code)
	}
	if code := interrupt("started", "run", "--root", root, "--rm", "bb", "sh", "-c", "echo started >&2; sleep 30"); code != 130 {
		t.Errorf("run interrupted: exit code %d, want 130", code)
	}
}

// exitCode is the exit code of a finished command's error (0 for nil).
func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestFlagErrorsExit125: a flag a command cannot parse ends it with
// docker's exit code for it, 125, and docker's hint.
func TestFlagErrorsExit125(t *testing.T) {
	for _, args := range [][]string{{"build", "--nope", "."}, {"images", "-x"}, {"build", "--memory"}} {
		root := newRootCommand()
		root.SetArgs(args)
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		err := root.Execute()
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 125 || !strings.Contains(ee.msg, "See 'builder "+args[0]+" --help'.") {
			t.Errorf("builder %v: %v, want exit code 125 and the hint", args, err)
		}
	}
}
