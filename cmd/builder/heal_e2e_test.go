package main

import (
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// damageable lists the files under root that TestRootHealsItself may
// damage: everything but the contents of snapshot trees (a file deleted
// inside a committed tree cannot be told from one the build deleted).
func damageable(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		parts := strings.Split(rel, string(filepath.Separator))
		if len(parts) >= 4 && parts[0] == "snapshots" && parts[1] == "snapshots" && (parts[3] == "fs" || parts[3] == "work") {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	return files
}

// damage deletes, truncates or overwrites file (keeping its size, so only
// a hash tells) as rnd picks.
func damage(t *testing.T, rnd *rand.Rand, file string) string {
	t.Helper()
	os.Chmod(file, 0o600)
	switch rnd.Intn(3) {
	case 0:
		os.Remove(file)
		return "deleted"
	case 1:
		os.Truncate(file, int64(rnd.Intn(8)))
		return "truncated"
	default:
		b, _ := os.ReadFile(file)
		if len(b) == 0 {
			b = []byte("x")
		}
		for i := 0; i < 1+len(b)/64; i++ {
			b[rnd.Intn(len(b))] ^= byte(1 + rnd.Intn(255))
		}
		os.WriteFile(file, b, 0o600)
		return "overwritten"
	}
}

// TestRootHealsItself damages random files under a root (metadata, key
// log, blobs, image store, snapshot metadata, ...) many times; after each
// damage the next build must succeed with the right content, and
// builder images must still list the images.
func TestRootHealsItself(t *testing.T) {
	requireRootE2E(t)
	bin := builderBinary(t)
	root := filepath.Join(t.TempDir(), "root")
	seed := rand.Int63()
	if v := os.Getenv("BUILDER_HEAL_SEED"); v != "" {
		fmt.Sscan(v, &seed)
	}
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewSource(seed))
	ctxDir := busyboxContext(t,
		"RUN echo base > /base",
		"COPY a.txt /a.txt",
		"RUN --mount=type=cache,target=/c cat /a.txt > /b.txt && echo built >> /b.txt",
	)
	build := func(content, tag string) (string, error) {
		os.WriteFile(filepath.Join(ctxDir, "a.txt"), []byte(content), 0o644)
		dest := t.TempDir()
		out, err := runBuild(t, bin, root, ctxDir, "-t", tag, "-o", "type=local,dest="+dest)
		if err != nil {
			return out, err
		}
		for f, want := range map[string]string{"base": "base\n", "b.txt": content + "built\n"} {
			if b, err := os.ReadFile(filepath.Join(dest, f)); err != nil || string(b) != want {
				return out, fmt.Errorf("/%s = %q (%v), want %q", f, b, err, want)
			}
		}
		return out, nil
	}
	if out, err := build("other\n", "other:1"); err != nil {
		t.Fatalf("first build: %v\n%s", err, out)
	}
	const rounds = 30
	for i := 0; i < rounds; i++ {
		files := damageable(t, root)
		var what []string
		for n := 0; n < 1+rnd.Intn(3); n++ {
			f := files[rnd.Intn(len(files))]
			rel, _ := filepath.Rel(root, f)
			what = append(what, damage(t, rnd, f)+" "+rel)
		}
		if rnd.Intn(4) == 0 {
			// prune works on a damaged root and removes what is broken.
			args := []string{"prune", "-f", "--root", root}
			if rnd.Intn(2) == 0 {
				args = append(args, "-a")
			}
			if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
				t.Fatalf("round %d after %s: %v: %v\n%s", i, strings.Join(what, ", "), args, err, out)
			}
		}
		content := fmt.Sprintf("round %d\n", i%3)
		if out, err := build(content, fmt.Sprintf("app:%d", i%3)); err != nil {
			t.Fatalf("round %d after %s: build: %v\n%s", i, strings.Join(what, ", "), err, out)
		}
		if out, err := exec.Command(bin, "images", "--root", root).CombinedOutput(); err != nil {
			t.Fatalf("round %d after %s: builder images: %v\n%s", i, strings.Join(what, ", "), err, out)
		}
	}
}

// TestPruneLoopDuringBuilds runs builder prune -a -f in a loop while rounds
// of concurrent builds run on the same root: no build may fail, and prune
// either prunes or says the root is in use.
func TestPruneLoopDuringBuilds(t *testing.T) {
	requireRootE2E(t)
	bin := builderBinary(t)
	root := filepath.Join(t.TempDir(), "root")
	stop := make(chan struct{})
	pruned := make(chan string, 1)
	go func() {
		n, busy := 0, 0
		for {
			select {
			case <-stop:
				pruned <- fmt.Sprintf("%d prunes, %d refused", n, busy)
				return
			default:
			}
			out, err := exec.Command(bin, "prune", "-a", "-f", "--root", root).CombinedOutput()
			switch {
			case err == nil:
				n++
			case strings.Contains(string(out), "in use by another builder process"):
				busy++
			default:
				pruned <- fmt.Sprintf("prune failed: %v\n%s", err, out)
				return
			}
		}
	}()
	for r := 0; r < 4; r++ {
		var wg sync.WaitGroup
		errs := make([]string, 3)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				want := fmt.Sprintf("prune round %d build %d", r, i)
				ctxDir := busyboxContext(t,
					"RUN echo shared > /shared",
					"RUN --mount=type=cache,target=/c,id=pl echo x >> /c/log && cp /c/log /log",
					fmt.Sprintf("RUN echo '%s' > /own", want))
				dest := t.TempDir()
				out, err := runBuild(t, bin, root, ctxDir, "-o", "type=local,dest="+dest)
				if err != nil {
					errs[i] = fmt.Sprintf("build %q: %v\n%s", want, err, out)
					return
				}
				if b, err := os.ReadFile(filepath.Join(dest, "own")); err != nil || strings.TrimSpace(string(b)) != want {
					errs[i] = fmt.Sprintf("build %q: /own = %q, %v", want, b, err)
				}
			}()
		}
		wg.Wait()
		for _, e := range errs {
			if e != "" {
				t.Error(e)
			}
		}
	}
	close(stop)
	res := <-pruned
	if strings.HasPrefix(res, "prune failed") {
		t.Fatal(res)
	}
	t.Log(res)
}
