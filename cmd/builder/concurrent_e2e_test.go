package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentBuildsOneRoot runs rounds of concurrent builds (separate
// processes of the real binary) of changing Dockerfiles on one --root:
// every build must succeed and export exactly its own content. The builds
// of a round share steps (the same COPY and RUNs), a cache mount, and a
// new step each round that writes a random id: it must run in exactly one
// of the processes while the others wait for its result (the per-key
// lock), so all of them export the same id.
func TestConcurrentBuildsOneRoot(t *testing.T) {
	requireRootE2E(t)
	bin := builderBinary(t)
	root := filepath.Join(t.TempDir(), "root")
	const rounds, perRound = 8, 4
	for r := 0; r < rounds; r++ {
		var wg sync.WaitGroup
		errs := make([]string, perRound)
		ids := make([]string, perRound)
		ran := make([]bool, perRound)
		for i := 0; i < perRound; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				want := fmt.Sprintf("round %d build %d", r, i)
				ctxDir := busyboxContext(t,
					"RUN echo shared > /shared",
					fmt.Sprintf("RUN sleep 0.3; echo round %d; cat /proc/sys/kernel/random/uuid > /round", r),
					"RUN --mount=type=cache,target=/c,id=conc echo x >> /c/log && echo cached > /cm",
					fmt.Sprintf("RUN echo '%s' > /own", want),
				)
				dest := t.TempDir()
				out, err := runBuild(t, bin, root, ctxDir, "-o", "type=local,dest="+dest)
				if err != nil {
					errs[i] = fmt.Sprintf("build %q: %v\n%s", want, err, out)
					return
				}
				b, _ := os.ReadFile(filepath.Join(dest, "round"))
				ids[i] = string(b)
				ran[i] = stepRan(out, fmt.Sprintf("echo round %d;", r))
				for f, w := range map[string]string{"own": want, "shared": "shared", "cm": "cached"} {
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
		n := 0
		for i := range ran {
			if ran[i] {
				n++
			}
			if ids[i] != ids[0] || len(ids[i]) < 30 {
				t.Errorf("round %d: build %d exported step result %q, build 0 %q: the shared step ran more than once", r, i, ids[i], ids[0])
			}
		}
		if n != 1 {
			t.Errorf("round %d: the new shared step ran in %d builds, want 1", r, n)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
}

// stepRan reports whether the plain progress out shows the step whose
// name contains marker as run (not CACHED).
func stepRan(out, marker string) bool {
	num := ""
	for _, l := range strings.Split(out, "\n") {
		if num == "" && strings.HasPrefix(l, "#") && strings.Contains(l, marker) {
			num, _, _ = strings.Cut(l, " ")
			continue
		}
		if num != "" && strings.HasPrefix(l, num+" ") {
			if strings.HasPrefix(l, num+" CACHED") {
				return false
			}
			if strings.HasPrefix(l, num+" DONE") {
				return true
			}
		}
	}
	return false
}

// TestKilledBuildLeavesNothing kills a build (kill -9) while its RUN runs
// with a cache mount and a writable bind mount, then checks that the next
// build on the root removes everything the killed one left: its cgroups
// (in every v1 controller), run directory, temporary directories, active
// snapshots and lease files, while the host has no sandbox process left.
func TestKilledBuildLeavesNothing(t *testing.T) {
	requireRootE2E(t)
	bin := builderBinary(t)
	root := filepath.Join(t.TempDir(), "root")
	marker := fmt.Sprintf("%d", 500000+os.Getpid()%100000)
	ctxDir := busyboxContext(t, "RUN echo one > /one", "RUN --mount=type=bind,target=/m,rw --mount=type=cache,target=/c busybox sleep "+marker)
	parent := fmt.Sprintf("builder-e2e-kill9-%d", os.Getpid())
	cmd := buildCmd(bin, root, ctxDir, "--cgroup-parent", parent)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(hostLeftovers(t, "\x00never\x00", "sleep\x00"+marker, "")) == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the RUN never started:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill() // SIGKILL: no clean-up of its own runs
	cmd.Wait()
	// The sandbox init notices its builder is gone and kills the RUN.
	for len(hostLeftovers(t, "\x00never\x00", "sleep\x00"+marker, "")) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the RUN survived its builder")
		}
		time.Sleep(50 * time.Millisecond)
	}
	leftovers := func() []string {
		left := hostLeftovers(t, root, "sleep\x00"+marker, parent)
		for _, pat := range []string{"executor/run-*", "tmp/*", "cache/content/ingest/*", "snapshots/trash/*"} {
			m, _ := filepath.Glob(filepath.Join(root, pat))
			left = append(left, m...)
		}
		metas, _ := filepath.Glob(filepath.Join(root, "snapshots/snapshots/*/meta.json"))
		for _, m := range metas {
			if b, _ := os.ReadFile(m); !strings.Contains(string(b), `"kind":"committed"`) {
				left = append(left, "active snapshot: "+m)
			}
		}
		return left
	}
	before := leftovers()
	t.Logf("left by kill -9:\n%s", strings.Join(before, "\n"))
	if !strings.Contains(strings.Join(before, "\n"), "cgroup: ") || !strings.Contains(strings.Join(before, "\n"), "run-") {
		t.Fatalf("kill -9 left no cgroup or run directory: the test checks nothing (left: %v)", before)
	}

	// The next build on the root cleans up, and works.
	ctx2 := busyboxContext(t, "RUN echo one > /one", "RUN test -f /one")
	if got, err := runBuild(t, bin, root, ctx2); err != nil {
		t.Fatalf("build after kill -9: %v\n%s", err, got)
	}
	if left := leftovers(); len(left) > 0 {
		t.Errorf("left after the next build:\n%s", strings.Join(left, "\n"))
	}
}

// TestKilledTarExportLeavesNothing kills a build (kill -9) while its
// type=tar output unpacks the image: the unpacked tree is in the root,
// where the next build's recovery removes it, and nothing but the output
// is ever left beside the user's file.
func TestKilledTarExportLeavesNothing(t *testing.T) {
	requireRootE2E(t)
	bin := builderBinary(t)
	root := filepath.Join(t.TempDir(), "root")
	ctxDir := busyboxContext(t, "COPY big /big")
	big := make([]byte, 96<<20)
	for i := range big {
		big[i] = byte(i * 7919 >> 8)
	}
	writeFiles(t, ctxDir, map[string]string{"big": string(big)})
	outDir := t.TempDir()
	dest := filepath.Join(outDir, "fs.tar")
	cmd := buildCmd(bin, root, ctxDir, "-o", "type=tar,dest="+dest)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	scratch := func() []string {
		m, _ := filepath.Glob(filepath.Join(root, "tmp", "*rootfs*"))
		return m
	}
	deadline := time.After(60 * time.Second)
	for len(scratch()) == 0 {
		select {
		case err := <-done:
			t.Fatalf("the build ended (%v) before its export was seen unpacking in the root:\n%s", err, out.String())
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("the export never started:\n%s", out.String())
		case <-time.After(time.Millisecond):
		}
	}
	cmd.Process.Kill() // SIGKILL: no clean-up of its own runs
	<-done
	beside := func() []string {
		ents, _ := os.ReadDir(outDir)
		var names []string
		for _, e := range ents {
			if e.Name() != "fs.tar" && !strings.HasPrefix(e.Name(), ".tmp-fs.tar-") {
				names = append(names, e.Name())
			}
		}
		return names
	}
	if left := beside(); len(left) > 0 {
		t.Errorf("beside the output after kill -9: %v", left)
	}
	if got, err := runBuild(t, bin, root, ctxDir, "-o", "type=tar,dest="+dest); err != nil {
		t.Fatalf("build after kill -9: %v\n%s", err, got)
	}
	if left := scratch(); len(left) > 0 {
		t.Errorf("the killed export's tree is left in the root: %v", left)
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 1 || ents[0].Name() != "fs.tar" {
		t.Errorf("beside the output after the next build: %v", ents)
	}
}
