package dockerfile

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/frontend/*/golden.txt")

const goldenDir = "../../testdata/frontend"

// goldenOptions is the optional options.json of a golden case.
type goldenOptions struct {
	BuildArgs map[string]string `json:"buildArgs"`
	Target    string            `json:"target"`
	NoCache   bool              `json:"noCache"`
	Exclude   []string          `json:"exclude"`
}

// TestGolden converts testdata/frontend/<case>/Dockerfile with the fake
// resolver and compares a dump of the graph and config to golden.txt.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(goldenDir, "*", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no golden cases")
	}
	for _, df := range dirs {
		dir := filepath.Dir(df)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			dt, err := os.ReadFile(df)
			if err != nil {
				t.Fatal(err)
			}
			var gopt goldenOptions
			if b, err := os.ReadFile(filepath.Join(dir, "options.json")); err == nil {
				if err := json.Unmarshal(b, &gopt); err != nil {
					t.Fatalf("options.json: %v", err)
				}
			}
			res := mustConvert(t, string(dt), func(o *Options) {
				o.BuildArgs = gopt.BuildArgs
				o.Target = gopt.Target
				o.NoCache = gopt.NoCache
				o.ExcludePatterns = gopt.Exclude
			})
			checkInvariant(t, res)
			got := dump(res)
			golden := filepath.Join(dir, "golden.txt")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("dump differs from %s (run with -update to accept):\n%s", golden, got)
			}
		})
	}
}
