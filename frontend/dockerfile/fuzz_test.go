package dockerfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzConvert checks that no Dockerfile makes Convert panic, that every
// error is located (but for errors in an option such as --target), and that successful results keep the history invariant.
func FuzzConvert(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(goldenDir, "*", "Dockerfile"))
	for _, s := range seeds {
		if dt, err := os.ReadFile(s); err == nil {
			f.Add(string(dt), "")
		}
	}
	f.Add("FROM busybox AS a\nCOPY --from=a / /\n", "a")
	f.Add("FROM $X\n", "")
	f.Add("# escape=`\nFROM scratch\nRUN a`\n b\n", "")
	f.Fuzz(func(t *testing.T, df, target string) {
		res, err := Convert(context.Background(), Options{
			Dockerfile: []byte(df), Filename: "Dockerfile", Target: target,
			Platform: testPlatform, Resolver: newResolver(),
		})
		if err != nil {
			var de *Error
			var oe *OptionError
			if errors.As(err, &oe) {
				return
			}
			if !errors.As(err, &de) || de.Line < 1 {
				t.Fatalf("unlocated error %q", err)
			}
			return
		}
		checkInvariant(t, res)
	})
}
