package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	imagestore "github.com/builderdev/builder/exporter/imagestore"
	"github.com/builderdev/builder/internal/containers"
	"github.com/builderdev/builder/internal/registrytest"
	"github.com/builderdev/builder/run"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/state"
	"github.com/spf13/cobra"
)

// switchableRegistry starts an in-process registry that down stops: its
// connections are then closed unanswered, as a stopped registry's.
func switchableRegistry(t *testing.T) (host string, down *atomic.Bool) {
	down = &atomic.Bool{}
	host = registrytest.NewInProcessHandler(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() {
				if hj, ok := w.(http.Hijacker); ok {
					if c, _, err := hj.Hijack(); err == nil {
						c.Close()
						return
					}
				}
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	return host, down
}

// TestRunLocalStore builds -t into the local image store (no --output) and
// runs the result by name, ID and full name with the registry stopped, as
// docker run uses local images first.
func TestRunLocalStore(t *testing.T) {
	requireRootOverlay(t)
	root := filepath.Join(t.TempDir(), "root")
	hostState(t, root)
	host, down := switchableRegistry(t)
	registrytest.Push(t, runTestImage(t), host+"/base/busybox:1")

	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+host+"/base/busybox:1\nRUN echo built > /msg\nCMD [\"cat\", \"/msg\"]\n"), 0o644)
	var log bytes.Buffer
	if err := Build(context.Background(), BuildOptions{ContextDir: ctxDir, Tags: []string{"app:1", host + "/app/app:1"}, Progress: "plain", Root: root}, &log); err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	// A registry image run once is in the cache for the next run.
	if code, out, _ := runForTest(t, RunOptions{Image: host + "/base/busybox:1", Root: root, Remove: true, Args: []string{"echo", "pulled"}}); code != 0 || out != "pulled\n" {
		t.Fatalf("run of a registry image: code %d out %q", code, out)
	}
	var id string
	if err := withImageStore(root, func(s *imagestore.Store) error {
		im, err := s.Get("app:1")
		id = im.ID.Encoded()[:12]
		return err
	}); err != nil {
		t.Fatal(err)
	}
	down.Store(true)

	for _, tt := range []struct {
		name  string
		o     RunOptions
		want  string
		isErr bool
	}{
		{"short name", RunOptions{Image: "app:1"}, "built\n", false},
		{"short name, command", RunOptions{Image: "app:1", Args: []string{"sh", "-c", "echo $FOO"}}, "from-image\n", false},
		{"full name", RunOptions{Image: "docker.io/library/app:1"}, "built\n", false},
		{"registry-style name stored", RunOptions{Image: host + "/app/app:1"}, "built\n", false},
		{"image ID prefix", RunOptions{Image: id}, "built\n", false},
		{"--pull=never", RunOptions{Image: "app:1", Pull: "never"}, "built\n", false},
		{"pulled before, registry down", RunOptions{Image: host + "/base/busybox:1", Args: []string{"echo", "cached"}}, "cached\n", false},
		{"--pull=always asks the stopped registry", RunOptions{Image: host + "/app/app:1", Pull: "always"}, "", true},
		{"--pull=never and not stored", RunOptions{Image: host + "/app/other:1", Pull: "never"}, "", true},
		{"bad --pull", RunOptions{Image: "app:1", Pull: "sometimes"}, "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Root, tt.o.Remove = root, true
			var out, errOut bytes.Buffer
			code, err := run.Run(context.Background(), tt.o, RunIO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut})
			if tt.isErr {
				if err == nil {
					t.Fatalf("ran (code %d, out %q), want an error", code, out.String())
				}
				return
			}
			if err != nil || code != 0 || out.String() != tt.want {
				t.Fatalf("code %d, err %v, out %q (stderr %q); want %q", code, err, out.String(), errOut.String(), tt.want)
			}
		})
	}
}

// runSnapshots counts the containers' snapshots under root.
func runSnapshots(t *testing.T, root string) int {
	t.Helper()
	r, err := state.Open(root, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sn, err := r.Snapshots()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	sn.Walk(context.Background(), func(i snapshot.Info) error {
		if strings.HasPrefix(i.Name, "run-") {
			n++
		}
		return nil
	})
	return n
}

// cli runs a builder subcommand in-process and returns its stdout.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var cmd = map[string]func() *cobra.Command{"ps": newPsCommand, "rm": newRmCommand}[args[0]]()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args[1:])
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestContainerLifecycle runs containers with and without --rm and
// --name, lists them with ps and removes them with rm, down to no record
// and no snapshot.
func TestContainerLifecycle(t *testing.T) {
	requireRootOverlay(t)
	root := filepath.Join(t.TempDir(), "root")
	hostState(t, root)
	dir, _ := writeLayout(t, runTestImage(t))
	img := "oci:" + dir

	if code, _, _ := runForTest(t, RunOptions{Image: img, Root: root, Name: "first", Args: []string{"sh", "-c", "echo data > /f; exit 3"}}); code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
	runForTest(t, RunOptions{Image: img, Root: root, Args: []string{"true"}})
	runForTest(t, RunOptions{Image: img, Root: root, Remove: true, Args: []string{"true"}})
	for _, o := range []RunOptions{
		{Image: img, Root: root, Name: "first", Args: []string{"true"}},
		{Image: img, Root: root, Name: "-bad", Args: []string{"true"}},
		{Image: img, Root: root, Name: "a/b", Args: []string{"true"}},
	} {
		if _, err := run.Run(context.Background(), o, RunIO{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}); err == nil {
			t.Errorf("run --name %q succeeded", o.Name)
		}
	}
	if n := runSnapshots(t, root); n != 2 {
		t.Fatalf("%d container snapshots, want 2 (the runs without --rm)", n)
	}

	out, err := cli(t, "ps", "--root", root)
	if err != nil || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "CONTAINER ID") {
		t.Errorf("ps (running only):\n%s%v", out, err)
	}
	out, err = cli(t, "ps", "-a", "--root", root)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 3 || !strings.Contains(out, `"sh -c echo data > /…"`) || !strings.Contains(out, "Exited (3)") ||
		!strings.Contains(out, "Exited (0)") || !strings.Contains(lines[2], "first") || !strings.Contains(out, img) {
		t.Errorf("ps -a:\n%s%v", out, err)
	}
	out, err = cli(t, "ps", "-aq", "--no-trunc", "--root", root)
	ids := strings.Fields(out)
	if err != nil || len(ids) != 2 || len(ids[0]) != 64 {
		t.Fatalf("ps -aq --no-trunc: %q %v", out, err)
	}

	cs := openContainers(t, root)
	first, err := cs.Find("first")
	if err != nil || first.State != containers.Exited || first.ExitCode != 3 || first.Snapshot != "run-"+first.ID ||
		strings.Join(first.Command, " ") != "sh -c echo data > /f; exit 3" || !strings.HasPrefix(first.ImageID, "sha256:") {
		t.Errorf("record of first: %+v, %v", first, err)
	}

	if _, err := cli(t, "rm", "--root", root, "nosuch"); err == nil || !strings.Contains(err.Error(), "No such container: nosuch") {
		t.Errorf("rm nosuch: %v", err)
	}
	other := ids[0]
	if other == first.ID {
		other = ids[1]
	}
	out, err = cli(t, "rm", "--root", root, "first", other[:8])
	if err != nil || out != "first\n"+other[:8]+"\n" {
		t.Errorf("rm: %q %v", out, err)
	}
	if out, _ := cli(t, "ps", "-aq", "--root", root); out != "" {
		t.Errorf("ps -aq after rm: %q", out)
	}
	if n := runSnapshots(t, root); n != 0 {
		t.Errorf("%d container snapshots after rm", n)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "containers"))
	for _, e := range ents {
		if e.Name() != "lock" {
			t.Errorf("left in containers/: %s", e.Name())
		}
	}

	t.Run("dead", func(t *testing.T) {
		// A record left "running" by a builder process that died.
		c := &containers.Container{ID: strings.Repeat("ab", 32), Name: "ghost", Image: img, Command: []string{"sleep"}, Created: time.Now(), State: containers.Running, StartedAt: time.Now(), Snapshot: "run-ghost"}
		release, err := cs.Create(c)
		if err != nil {
			t.Fatal(err)
		}
		release()
		out, _ := cli(t, "ps", "-a", "--root", root)
		if !strings.Contains(out, "Dead") {
			t.Errorf("ps -a with a dead container:\n%s", out)
		}
		if out, err := cli(t, "rm", "--root", root, "ghost"); err != nil || out != "ghost\n" {
			t.Errorf("rm ghost: %q %v", out, err)
		}
	})
}

// TestRmForce runs a container in a builder process, finds it Up in ps,
// refuses rm without -f and removes it with -f, which ends the process.
func TestRmForce(t *testing.T) {
	requireRootOverlay(t)
	root := filepath.Join(t.TempDir(), "root")
	hostState(t, root)
	dir, _ := writeLayout(t, runTestImage(t))
	bin := builderBinary(t)
	cmd := exec.Command(bin, "run", "--root", root, "--name", "sleeper", "oci:"+dir, "sleep", "60")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			<-done
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := cli(t, "ps", "--root", root)
		if strings.Contains(out, "sleeper") && strings.Contains(out, "Up ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container never showed Up in ps:\n%s\nstderr: %s", out, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := cli(t, "rm", "--root", root, "sleeper"); err == nil || !strings.Contains(err.Error(), "container is running") {
		t.Fatalf("rm of a running container: %v", err)
	}
	start := time.Now()
	if out, err := cli(t, "rm", "-f", "--root", root, "sleeper"); err != nil || out != "sleeper\n" {
		t.Fatalf("rm -f: %q %v", out, err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("rm -f took %s", d)
	}
	select {
	case <-done:
		exited = true
	case <-time.After(10 * time.Second):
		t.Fatal("the builder run process is still running after rm -f")
	}
	if out, _ := cli(t, "ps", "-aq", "--root", root); out != "" {
		t.Errorf("ps -aq after rm -f: %q", out)
	}
	if n := runSnapshots(t, root); n != 0 {
		t.Errorf("%d container snapshots after rm -f", n)
	}
}

// TestPsStatus checks the STATUS and COMMAND columns.
func TestPsStatus(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	c := func(st string, code int) *containers.Container {
		return &containers.Container{ID: strings.Repeat("0123456789ab", 6)[:64], Name: "n", Image: "app:1", Command: []string{"sh", "-c", "echo a very long command"},
			Created: now.Add(-time.Hour), State: st, ExitCode: code, StartedAt: now.Add(-90 * time.Second), FinishedAt: now.Add(-3 * time.Minute)}
	}
	for _, tt := range []struct {
		row  psRow
		want string
	}{
		{psRow{Container: c(containers.Running, 0), Running: true}, "Up About a minute"},
		{psRow{Container: c(containers.Created, 0), Running: true}, "Created"},
		{psRow{Container: c(containers.Exited, 2), Running: false}, "Exited (2) 3 minutes ago"},
		{psRow{Container: c(containers.Running, 0), Running: false}, "Dead"},
	} {
		if got := psStatus(tt.row, now); got != tt.want {
			t.Errorf("status of %s (lock held %v) = %q, want %q", tt.row.Container.State, tt.row.Running, got, tt.want)
		}
	}
	var b bytes.Buffer
	printPs(&b, []psRow{{Container: c(containers.Exited, 0), Running: false}}, true, false, false, now)
	want := "CONTAINER ID   IMAGE   COMMAND                  CREATED             STATUS                     PORTS   NAMES\n" +
		"0123456789ab   app:1   \"sh -c echo a very l…\"   About an hour ago   Exited (0) 3 minutes ago           n\n"
	if b.String() != want {
		t.Errorf("ps -a:\n%s\nwant:\n%s", b.String(), want)
	}
}

// openContainers opens the container records of the state root dir.
func openContainers(t *testing.T, dir string) *containers.Store {
	t.Helper()
	root, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	cs, err := root.Containers()
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
