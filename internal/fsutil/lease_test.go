package fsutil

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLeaseHelper is the child of TestLeaseDeadProcess: it takes a lease,
// prints its id and sleeps until killed.
func TestLeaseHelper(t *testing.T) {
	dir := os.Getenv("FSUTIL_LEASE_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	id, err := OwnLease(dir)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("lease " + id + "\n")
	time.Sleep(time.Minute)
}

func TestLeaseDeadProcess(t *testing.T) {
	dir := t.TempDir()
	own, err := OwnLease(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := OwnLease(dir); again != own {
		t.Errorf("second OwnLease = %s, want %s", again, own)
	}
	if !LeaseLive(dir, own) {
		t.Errorf("own lease %s not live", own)
	}
	if OwnerOf("run-"+own+"-abc", "run-") != own || OwnerOf("run-abc", "run-") != "" {
		t.Error("OwnerOf does not find the lease id")
	}

	cmd, out := startChild(t, "TestLeaseHelper", "FSUTIL_LEASE_DIR="+dir)
	buf := make([]byte, 100)
	n, _ := out.Read(buf)
	child := strings.TrimSpace(strings.TrimPrefix(string(buf[:n]), "lease "))
	if !LeaseLive(dir, child) {
		t.Fatalf("child lease %q not live while the child runs", child)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if LeaseLive(dir, child) {
		t.Fatalf("child lease %s live after kill -9", child)
	}
	ReapLeases(dir)
	if _, err := os.Stat(filepath.Join(dir, child)); !os.IsNotExist(err) {
		t.Errorf("dead lease file not reaped: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, own)); err != nil {
		t.Errorf("own lease file reaped: %v", err)
	}
	if LeaseLive(dir, "nonsense") || LeaseLive(dir, "p1x00") {
		t.Error("unknown leases are live")
	}
}

func TestLockContext(t *testing.T) {
	file := filepath.Join(t.TempDir(), "k.lock")
	unlock, err := LockContext(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := TryLock(file); ok {
		t.Fatal("TryLock succeeded on a held lock")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := LockContext(ctx, file); err == nil {
		t.Fatal("LockContext on a held lock returned before ctx ended")
	}
	done := make(chan error)
	go func() {
		u, err := LockContext(context.Background(), file)
		if err == nil {
			u()
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
