package fsutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A lease marks what a live process owns under a shared directory (a state
// root used by many builder processes at once). The lease of a process in a
// directory is the file DIR/<id>, held with an exclusive flock for as long
// as the process lives: the kernel drops the lock when the process dies,
// also on kill -9, so "is the lease held?" is exact, with no pid reuse and
// across pid namespaces. Objects a process creates before they are complete
// (temporary files, active snapshots, run directories) carry its lease id in
// their names or metadata; recovery removes an object only when its lease is
// not held.

var leases struct {
	mu  sync.Mutex
	ids map[string]string // lease dir -> this process's id
	fds []*os.File        // kept open (and locked) until the process exits
}

// OwnLease returns the id of this process's lease in dir, taking it on the
// first call (dir is created). The id is short, letters and digits only, so
// it can be embedded in file names ("run-<id>-..."). The lease is held
// until the process exits.
func OwnLease(dir string) (string, error) {
	leases.mu.Lock()
	defer leases.mu.Unlock()
	if id, ok := leases.ids[dir]; ok {
		return id, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("lease directory %s: %w", dir, err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := fmt.Sprintf("p%dx%s", os.Getpid(), hex.EncodeToString(b[:]))
	// Lock a file under a temporary name, then rename it into place, so
	// nobody ever sees the lease file unlocked while we are alive.
	tmp := filepath.Join(dir, ".new-"+id)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_RDWR|os.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return "", fmt.Errorf("creating lease in %s: %w", dir, err)
	}
	// Waiting: a ReapLeases in another process may hold the new file for
	// the instant it takes to see that it is too young to remove.
	if err := flock(f, unix.LOCK_EX); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("locking lease %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, id)); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("creating lease in %s: %w", dir, err)
	}
	if leases.ids == nil {
		leases.ids = map[string]string{}
	}
	leases.ids[dir] = id
	leases.fds = append(leases.fds, f)
	return id, nil
}

// ValidLeaseID reports whether id has the form OwnLease gives.
func ValidLeaseID(id string) bool {
	if len(id) < 4 || id[0] != 'p' {
		return false
	}
	for _, c := range id[1:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == 'x') {
			return false
		}
	}
	return strings.Count(id, "x") == 1
}

// LeaseLive reports whether lease id in dir is held by a live process
// (this one included). A missing lease file or a malformed id is not live.
func LeaseLive(dir, id string) bool {
	if !ValidLeaseID(id) {
		return false
	}
	f, err := os.Open(filepath.Join(dir, id))
	if err != nil {
		// Missing: never taken or already reaped. Any other error:
		// say live, removing nothing we cannot prove dead.
		return !errors.Is(err, os.ErrNotExist)
	}
	defer f.Close()
	err = flock(f, unix.LOCK_SH|unix.LOCK_NB)
	if err == nil {
		return false
	}
	return true
}

// ReapLeases removes the lease files in dir whose processes are dead. Call
// it after removing those processes' objects.
func ReapLeases(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := strings.TrimPrefix(e.Name(), ".new-")
		if !ValidLeaseID(name) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		// Held while removing: a lease is only removed while nobody
		// holds it, and an id is never taken twice.
		if flock(f, unix.LOCK_EX|unix.LOCK_NB) == nil {
			if e.Name() == name || oldEnough(e) {
				os.Remove(p)
			}
		}
		f.Close()
	}
}

// oldEnough reports whether a half-made lease file (".new-<id>", locked
// and renamed within microseconds by its owner) is a crash leftover.
func oldEnough(e os.DirEntry) bool {
	fi, err := e.Info()
	return err == nil && time.Since(fi.ModTime()) > time.Minute
}

// OwnerOf returns the lease id embedded in name after prefix
// ("run-<id>-rest" with prefix "run-"), or "" when there is none.
func OwnerOf(name, prefix string) string {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "-")
	if !ValidLeaseID(id) {
		return ""
	}
	return id
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// LockContext takes an exclusive flock on file (created), waiting until it
// is free or ctx is done. Closing through the returned function unlocks.
// Unlike Lock it never blocks in the kernel, so a cancelled build stops
// waiting at once.
func LockContext(ctx context.Context, file string) (unlock func(), err error) {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", file, err)
	}
	wait := 5 * time.Millisecond
	for {
		err := flock(f, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", file, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, context.Cause(ctx)
		case <-t.C:
		}
		if wait < 200*time.Millisecond {
			wait *= 2
		}
	}
}

// TryLock takes an exclusive flock on file (created) if nobody holds it;
// ok is false when it is held.
func TryLock(file string) (unlock func(), ok bool, err error) {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("locking %s: %w", file, err)
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("locking %s: %w", file, err)
	}
	return func() { f.Close() }, true, nil
}

// LeasedTempDir makes a new directory in dir named "<lease>-<kind>-*" after
// this process's lease in leaseDir, so that RemoveDead can tell when its
// owner is dead.
func LeasedTempDir(dir, leaseDir, kind string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("temp dir %s: %w", dir, err)
	}
	owner, err := OwnLease(leaseDir)
	if err != nil {
		return "", err
	}
	return os.MkdirTemp(dir, owner+"-"+strings.TrimSuffix(kind, "-")+"-")
}

// RemoveDead removes the entries of dir whose names carry, after prefix,
// the lease of a process that is dead (see OwnerOf and LeaseLive in
// leaseDir). Entries of live processes and entries without a lease stay.
func RemoveDead(dir, prefix, leaseDir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var errs []error
	for _, e := range ents {
		owner := OwnerOf(e.Name(), prefix)
		if owner == "" || LeaseLive(leaseDir, owner) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("removing what a dead build left: %w", err))
		}
	}
	return errors.Join(errs...)
}
