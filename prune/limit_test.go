package prune

import "testing"

// TestLimit: --gc-limit, else $BUILDER_GC_LIMIT, in docker's size syntax;
// 0 turns the GC off.
func TestLimit(t *testing.T) {
	root := t.TempDir()
	if _, err := Limit("12x", root); err == nil {
		t.Error("--gc-limit 12x accepted")
	}
	t.Setenv(LimitEnv, "1g")
	if n, err := Limit("", root); err != nil || n != 1<<30 {
		t.Errorf("$%s=1g: %d, %v", LimitEnv, n, err)
	}
	if n, err := Limit("0", root); err != nil || n != -1 {
		t.Errorf("--gc-limit 0: %d, %v", n, err)
	}
}
