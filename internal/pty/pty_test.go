package pty

import (
	"bytes"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestOpenSizeRaw(t *testing.T) {
	t.Parallel()
	m, s, err := Open()
	if err != nil {
		t.Skipf("no ptys here: %v", err)
	}
	defer m.Close()
	defer s.Close()
	if !IsTerminal(int(s.Fd())) || IsTerminal(-1) {
		t.Fatal("IsTerminal is wrong about the slave or a bad fd")
	}
	if err := SetSize(int(m.Fd()), Size{Rows: 33, Cols: 101}); err != nil {
		t.Fatal(err)
	}
	if got, err := GetSize(int(s.Fd())); err != nil || got != (Size{33, 101}) {
		t.Fatalf("size = %v, %v; want 33x101", got, err)
	}
	restore, err := MakeRaw(int(s.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	// Raw: no echo, so what the master writes is only readable at the
	// slave, not echoed back.
	if err := restore(); err != nil {
		t.Fatal(err)
	}
}

// TestControllingTerminal: a process started on the slave in its own
// session sees a terminal on its stdin.
func TestControllingTerminal(t *testing.T) {
	t.Parallel()
	m, s, err := Open()
	if err != nil {
		t.Skipf("no ptys here: %v", err)
	}
	defer m.Close()
	cmd := exec.Command("sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; stty size")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	if err := SetSize(int(m.Fd()), Size{Rows: 20, Cols: 70}); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	done := make(chan []byte)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, m) // ends with EIO when the slave is closed
		done <- b.Bytes()
	}()
	cmd.Wait()
	select {
	case out := <-done:
		if !strings.Contains(string(out), "is-a-tty") || !strings.Contains(string(out), "20 70") {
			t.Errorf("output %q, want is-a-tty and 20 70", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no EOF from the master")
	}
}
