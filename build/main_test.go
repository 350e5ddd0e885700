package build

import (
	"os"
	"testing"

	"github.com/builderdev/builder/executor"
)

// TestMain lets the test binary double as the sandbox init: the executor
// re-executes /proc/self/exe, which for tests is this binary.
func TestMain(m *testing.M) {
	executor.MaybeInit()
	os.Exit(m.Run())
}
