package executor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// String returns the output so far.
func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// sandboxInit returns the pid of this test's running sandbox init.
func sandboxInit(t *testing.T) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if !bytes.HasPrefix(cmdline, []byte(initArg0)) || !descendsFromUs(e.Name()) {
			continue
		}
		var pid int
		for _, c := range e.Name() {
			pid = pid*10 + int(c-'0')
		}
		return pid
	}
	t.Fatal("no sandbox init is running")
	return 0
}

// TestInitForwardsSignals sends SIGTERM to the sandbox's init (pid 1 inside)
// and expects the command to receive it, as with docker's --init.
func TestInitForwardsSignals(t *testing.T) {
	e, root := busyboxExecutor(t)
	out := &notifyWriter{marker: "ready", seen: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := e.Run(context.Background(), Spec{Rootfs: bindRoot(root), Env: []string{"PATH=/bin"}, Stdout: out, Stderr: out,
			Args: sh(`trap 'echo got-term; exit 5' TERM; echo ready; while true; do sleep 0.05; done`)})
		done <- err
	}()
	select {
	case <-out.seen:
	case <-time.After(10 * time.Second):
		t.Fatalf("the command did not start: %q", out.String())
	}
	if err := syscall.Kill(sandboxInit(t), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != 5 {
			t.Errorf("err = %v, want exit code 5 from the trap", err)
		}
		if !strings.Contains(out.String(), "got-term") {
			t.Errorf("output %q: the command never saw SIGTERM", out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sandbox did not end after SIGTERM")
	}
}

// TestInitReapsOrphans checks that processes orphaned inside the sandbox are
// reaped by its init instead of staying zombies.
func TestInitReapsOrphans(t *testing.T) {
	e, root := busyboxExecutor(t)
	r := run(t, e, Spec{Rootfs: bindRoot(root),
		Args: sh(`sh -c 'sleep 0.1 & exit 0'; sleep 0.5; grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l`)})
	if r.err != nil {
		t.Fatalf("%v: %s", r.err, r.stderr)
	}
	if got := strings.TrimSpace(r.stdout); got != "0" {
		t.Errorf("%s zombie processes in the sandbox, want 0", got)
	}
}
