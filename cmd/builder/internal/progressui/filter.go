package progressui

import (
	"fmt"
	"os"

	"github.com/builderdev/builder/internal/logfilter"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
)

// Filtered puts secret masking and per-step clipping
// ($BUILDKIT_STEP_LOG_MAX_SIZE, 2 MiB by default) in front of display,
// and, with logFile, writes the whole masked, unclipped log there in
// plain form. Call the returned flush before closing display.
func Filtered(display solver.Reporter, secrets ops.SecretMap, logFile string) (solver.Reporter, func(), error) {
	max, err := logfilter.MaxStepBytesFromEnv()
	if err != nil {
		return nil, nil, err
	}
	values := make([][]byte, 0, len(secrets))
	for _, v := range secrets {
		values = append(values, v)
	}
	var out solver.Reporter = logfilter.NewClipper(display, max)
	closeFile := func() {}
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("--log-file: %w", err)
		}
		full, err := New(f, "plain")
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		out = logfilter.Tee{out, full}
		closeFile = func() { full.Close(); f.Close() }
	}
	red := logfilter.NewRedactor(out, values)
	return red, func() { red.Flush(); closeFile() }, nil
}
