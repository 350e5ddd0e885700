package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentBuildsOneRoot runs rounds of concurrent builds (separate
// processes of the real binary) of changing Dockerfiles on one --root:
// every build must succeed and export exactly its own content. The builds
// share a base (the same COPY and RUN in every one, which must run once
// per round at most), a cache mount and each round's own steps.
func TestConcurrentBuildsOneRoot(t *testing.T) {
	requireRootE2E(t)
	bin := builderBinary(t)
	root := filepath.Join(t.TempDir(), "root")
	const rounds, perRound = 4, 4
	for r := 0; r < rounds; r++ {
		var wg sync.WaitGroup
		errs := make([]string, perRound)
		for i := 0; i < perRound; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				want := fmt.Sprintf("round %d build %d", r, i)
				ctxDir := busyboxContext(t,
					"RUN echo shared > /shared",
					fmt.Sprintf("RUN echo shared-%d > /round", r),
					"RUN --mount=type=cache,target=/c,id=conc echo x >> /c/log && echo cached > /cm",
					fmt.Sprintf("RUN echo '%s' > /own", want),
				)
				dest := t.TempDir()
				out, err := runBuild(t, bin, root, ctxDir, "-o", "type=local,dest="+dest)
				if err != nil {
					errs[i] = fmt.Sprintf("build %q: %v\n%s", want, err, out)
					return
				}
				for f, w := range map[string]string{"own": want, "shared": "shared", "round": fmt.Sprintf("shared-%d", r), "cm": "cached"} {
					b, err := os.ReadFile(filepath.Join(dest, f))
					if err != nil || strings.TrimSpace(string(b)) != w {
						errs[i] = fmt.Sprintf("build %q: /%s = %q (%v), want %q\n%s", want, f, b, err, w, out)
						return
					}
				}
			}(i)
		}
		wg.Wait()
		for _, e := range errs {
			if e != "" {
				t.Error(e)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
}
