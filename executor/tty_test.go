package executor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/pty"
)

// TestTty: with Spec.Tty the command's stdin is a terminal that is its
// controlling terminal (tty_nr in /proc/self/stat is set, ^C from the
// terminal interrupts it), and the window size set on the master is seen
// inside.
func TestTty(t *testing.T) {
	e, root := busyboxExecutor(t)
	tests := []struct {
		name     string
		script   string
		input    string
		wantOut  []string
		wantCode int
		// resize is set on the terminal after "ready" (instead of input).
		resize *pty.Size
		user   string
	}{
		{"controlling terminal", `[ -t 0 ] && [ -t 1 ] && echo stdin-is-a-tty; set -- $(cat /proc/self/stat); echo "tty_nr=$7"`,
			"", []string{"stdin-is-a-tty"}, 0, nil, ""},
		{"the terminal is in the sandbox's /dev/pts", `t=$(/bin/busybox tty) && [ -c "$t" ] && echo "visible $t owner $(stat -c %u "$t")"; ls /dev/pts`,
			"", []string{"visible /dev/pts/0 owner 0", "ptmx"}, 0, nil, ""},
		{"owned by the command's user", `stat -c "owner %u" $(/bin/busybox tty)`, "", []string{"owner 1234"}, 0, nil, "1234"},
		{"window size and its changes", `echo "size $(/bin/busybox stty size)"; trap 'echo "winch $(/bin/busybox stty size)"; exit 0' WINCH; echo ready; while :; do sleep 0.05; done`,
			"", []string{"size 24 80", "winch 30 100"}, 0, &pty.Size{Rows: 30, Cols: 100}, ""},
		{"ctrl-c from the terminal", `echo ready; sleep 30; echo not-interrupted`, "\x03", []string{"ready"}, 130, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, s, err := pty.Open()
			if err != nil {
				t.Skipf("no ptys: %v", err)
			}
			defer m.Close()
			if err := pty.SetSize(int(m.Fd()), pty.Size{Rows: 24, Cols: 80}); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			var mu sync.Mutex
			copied := make(chan struct{})
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := m.Read(buf)
					mu.Lock()
					out.Write(buf[:n])
					mu.Unlock()
					if err != nil {
						break
					}
				}
				close(copied)
			}()
			// The helper below uses m: it is done before m is closed.
			helped := make(chan struct{})
			defer func() { <-helped }()
			if tt.input == "" && tt.resize == nil {
				close(helped)
			} else {
				go func() {
					defer close(helped)
					for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
						mu.Lock()
						ready := strings.Contains(out.String(), "ready")
						mu.Unlock()
						if ready {
							time.Sleep(100 * time.Millisecond)
							if tt.resize != nil {
								pty.SetSize(int(m.Fd()), *tt.resize)
								return
							}
							io.WriteString(m, tt.input)
							return
						}
					}
				}()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err = e.Run(ctx, Spec{
				Rootfs: bindRoot(root), Args: sh(tt.script), Env: []string{"PATH=/bin"},
				Stdin: s, Stdout: s, Stderr: s, Tty: true, User: tt.user,
			})
			s.Close()
			code := 0
			var ee *ExitError
			if errors.As(err, &ee) {
				code = ee.Code
			} else if err != nil {
				t.Fatalf("Run: %v", err)
			}
			select {
			case <-copied:
			case <-time.After(5 * time.Second):
				t.Fatal("pty master never saw EOF")
			}
			got := out.String()
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d; output %q", code, tt.wantCode, got)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(got, w) {
					t.Errorf("output %q lacks %q", got, w)
				}
			}
			if strings.Contains(got, "tty_nr=0") || strings.Contains(got, "not-interrupted") {
				t.Errorf("no controlling terminal: %q", got)
			}
		})
	}
	t.Run("stdin not a file", func(t *testing.T) {
		_, err := e.Run(context.Background(), Spec{Rootfs: bindRoot(root), Args: sh("true"), Stdin: strings.NewReader(""), Tty: true})
		if err == nil || !strings.Contains(err.Error(), "tty needs a terminal") {
			t.Errorf("Run = %v, want a tty error", err)
		}
	})
}
