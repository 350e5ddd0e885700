package fsutil

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestLock(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "lock")
	sh1, err := Lock(file, false, true)
	if err != nil {
		t.Fatal(err)
	}
	sh2, err := Lock(file, false, true)
	if err != nil {
		t.Fatalf("a second shared lock: %v", err)
	}
	if _, err := Lock(file, true, true); !errors.Is(err, ErrLocked) {
		t.Fatalf("exclusive lock while shared ones are held: err = %v, want ErrLocked", err)
	}
	sh1()
	sh2()
	ex, err := Lock(file, true, true)
	if err != nil {
		t.Fatalf("exclusive lock after the shared ones were released: %v", err)
	}
	if _, err := Lock(file, false, true); !errors.Is(err, ErrLocked) {
		t.Fatalf("shared lock while an exclusive one is held: err = %v, want ErrLocked", err)
	}
	ex()
}
