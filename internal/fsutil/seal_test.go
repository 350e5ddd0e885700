package fsutil

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestSeal(t *testing.T) {
	t.Parallel()
	data := []byte(`{"id":"12","parent":"11"}`)
	sealed := Seal(data)
	got, err := Unseal(sealed)
	if err != nil || string(got) != string(data) {
		t.Fatalf("Unseal(Seal) = %q, %v", got, err)
	}
	if got, err := Unseal(data); err != nil || string(got) != string(data) {
		t.Errorf("unsealed data: %q, %v", got, err)
	}
	for i := range sealed {
		b := append([]byte(nil), sealed...)
		b[i] ^= 0x01
		// A damaged seal reads as unsealed data, which no longer parses.
		if got, err := Unseal(b); err == nil && (string(got) == string(data) || json.Valid(got)) {
			t.Errorf("flipping byte %d: Unseal = %q, nil; want ErrDamaged or invalid JSON", i, got)
		} else if err != nil && !errors.Is(err, ErrDamaged) {
			t.Errorf("flipping byte %d: %v", i, err)
		}
	}
	if _, err := Unseal(sealed[:len(sealed)-10]); !errors.Is(err, ErrDamaged) {
		t.Errorf("truncated: %v", err)
	}
}
