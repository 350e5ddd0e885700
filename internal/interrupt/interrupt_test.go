package interrupt

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestSecondSignalKills: the first SIGTERM cancels the context, a second
// ends the process even when the work ignores the cancellation.
func TestSecondSignalKills(t *testing.T) {
	if os.Getenv("BUILDER_TEST_SIGNAL_CHILD") == "1" {
		ctx, _, stop := Context()
		defer stop()
		os.Stdout.WriteString("ready\n")
		<-ctx.Done()
		os.Stdout.WriteString("cancelled\n")
		select {} // a hung clean-up
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecondSignalKills$")
	cmd.Env = append(os.Environ(), "BUILDER_TEST_SIGNAL_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	read := func(want string) {
		t.Helper()
		n, _ := out.Read(buf)
		if string(buf[:n]) != want {
			t.Fatalf("child said %q, want %q", buf[:n], want)
		}
	}
	read("ready\n")
	cmd.Process.Signal(syscall.SIGTERM)
	read("cancelled\n")
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Errorf("child ended with %v, want killed by SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("a second SIGTERM did not end the process")
	}
}
