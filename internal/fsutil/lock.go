package fsutil

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned by Lock with nonblock when another holder has the
// lock.
var ErrLocked = errors.New("locked by another process")

// Lock takes an flock on file (created, mode 0600): exclusive or shared,
// waiting for it unless nonblock. The lock is held until unlock is called or
// the process ends, so a crashed holder never leaves it taken.
func Lock(file string, exclusive, nonblock bool) (unlock func(), err error) {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if nonblock {
		how |= unix.LOCK_NB
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", file, ErrLocked)
		}
		return nil, fmt.Errorf("locking %s: %w", file, err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}
