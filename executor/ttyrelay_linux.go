package executor

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/builderdev/builder/internal/pty"
	"golang.org/x/sys/unix"
)

// ttyRelay is the terminal of a Spec.Tty command, as docker run -t gives
// it: a pty allocated inside the sandbox's own /dev/pts (so that the
// command's `tty` names a device it can see), relayed by the init to the
// executor's terminal (the init's fd 0, 1 and 2).
//
// The outer terminal is put in raw mode and made the init's controlling
// terminal: keys pass through untouched to the inner one, whose line
// discipline echoes and turns ^C into SIGINT for the command, and a
// window size change of the outer terminal (SIGWINCH to the init) is
// copied to the inner one.
type ttyRelay struct {
	master *os.File
	// restore puts the outer terminal back in its mode.
	restore func() error
	// drained is closed when the command's output has all been copied.
	drained chan struct{}
}

// activeTty is the relay of this init, nil without a tty.
var activeTty *ttyRelay

// startTtyRelay allocates the inner pty (after pivot_root: /dev/ptmx is
// the sandbox's) and starts copying. It returns the slave, to give the
// command as stdin, stdout, stderr and controlling terminal; the caller
// closes it once the command started.
func startTtyRelay(uid int) (*os.File, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("allocating a terminal in the sandbox: %w", err)
	}
	// As runc: the terminal belongs to the command's user.
	_ = unix.Fchown(int(slave.Fd()), uid, -1)
	// The init leads a session of its own with the outer terminal as
	// its controlling terminal, to get its SIGWINCH.
	if _, err := unix.Setsid(); err == nil {
		_ = unix.IoctlSetInt(0, unix.TIOCSCTTY, 0)
	}
	restore, err := pty.MakeRaw(0)
	if err != nil {
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("outer terminal: %w", err)
	}
	r := &ttyRelay{master: master, restore: restore, drained: make(chan struct{})}
	r.resize()
	go func() { _, _ = io.Copy(master, os.Stdin) }()
	go func() {
		// Ends with EIO once every holder of the slave has closed it.
		_, _ = io.Copy(os.Stdout, master)
		close(r.drained)
	}()
	activeTty = r
	return slave, nil
}

// resize copies the outer terminal's window size to the inner one (whose
// foreground process group then gets SIGWINCH).
func (r *ttyRelay) resize() {
	if sz, err := pty.GetSize(0); err == nil {
		_ = pty.SetSize(int(r.master.Fd()), sz)
	}
}

// drain waits until the command's last output was copied out, for at most
// d (a process that escaped the kill could hold the terminal), and puts
// the outer terminal back in its mode.
func (r *ttyRelay) drain(d time.Duration) {
	select {
	case <-r.drained:
	case <-time.After(d):
	}
	_ = r.restore()
}
