package build

// The golden suite builds every case in testdata/dockerfiles end to end
// through the library (the real frontend, solver, snapshotter, executor,
// registry and exporter) and compares the resulting image with expected
// files that were derived by hand from BuildKit's semantics
// (dockerfile2llb, fsutil copy, the overlay differ and containerd's tar
// writer):
//
//	testdata/dockerfiles/<case>/
//	  Dockerfile    the Dockerfile (it is not part of the context)
//	  context/      the build context (copied to a temp dir first, with
//	                normalized modes: git keeps only the executable bit)
//	  args.txt      optional: K=V build args, one a line; "--target=x";
//	                "--secret=id=X,src=FILE", "--ssh=ID=SOCKET",
//	                "--build-context=NAME=DIR|docker-image://REF|
//	                oci-layout://PATH|http://URL", "--label=K=V",
//	                "--allow=ENT",
//	                "--network=MODE", "--platform=P" (one),
//	                "--shm-size=SIZE", "--ulimit=U" as on the command
//	                line, $CASE replaced by the case dir
//	  layers.txt    the tar entries of every layer after the base image's
//	  config.json   the image config fields that must match BuildKit
//	  error.txt     for failing cases instead: substrings of the error,
//	                one a line
//
// The harness (package buildtest) always passes
// BASE=<registry>/busybox:latest and BASE_DIGEST=<registry>/busybox@sha256:...
// (the registrytest busybox image pushed to an in-process registry). Run
// with -update to rewrite the expected files from the current output: only
// do so after checking the diff against BuildKit's behaviour.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/internal/buildtest"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/state"
	units "github.com/docker/go-units"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// run is the outcome of one build.
type run struct {
	img      v1.Image
	res      *Result
	progress string
	err      error
}

// recorder is a Reporter that keeps a plain log of the progress, for
// failure messages.
type recorder struct {
	mu  sync.Mutex
	log strings.Builder
}

func (r *recorder) Status(s solver.Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case s.Cached:
		fmt.Fprintf(&r.log, "%s CACHED\n", s.Name)
	case s.Err != nil:
		fmt.Fprintf(&r.log, "%s ERROR %v\n", s.Name, s.Err)
	case !s.Completed.IsZero():
		fmt.Fprintf(&r.log, "%s DONE\n", s.Name)
	}
}

func (r *recorder) Log(l solver.Log) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log.Write(l.Data)
}

func (r *recorder) Warn(line int, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(&r.log, "WARNING: line %d: %s\n", line, msg)
}

// caseRequest is the request of case c: its args (with env's base and
// servers) and its args.txt flags.
func caseRequest(t *testing.T, env *buildtest.Env, c buildtest.Case, ctxDir string) Request {
	t.Helper()
	req := Request{
		ContextDir: ctxDir,
		Tags:       []string{"golden/" + c.Name + ":latest"},
		BuildArgs:  map[string]string{},
		Target:     c.Target,
	}
	for k, v := range env.BaseArgs {
		req.BuildArgs[k] = v
	}
	for k, v := range c.Args {
		req.BuildArgs[k] = env.Remote.Expand(t, c, v)
	}
	for _, f := range c.Flags {
		k, v, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		switch k {
		case "secret":
			id, src := "", ""
			for _, kv := range strings.Split(v, ",") {
				kk, vv, _ := strings.Cut(kv, "=")
				switch kk {
				case "id":
					id = vv
				case "src", "source":
					src = vv
				default:
					t.Fatalf("%s/args.txt: secret key %q", c.Dir, kk)
				}
			}
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if req.Secrets == nil {
				req.Secrets = map[string][]byte{}
			}
			req.Secrets[id] = data
		case "ssh":
			id, sock, _ := strings.Cut(v, "=")
			if req.SSH == nil {
				req.SSH = map[string]string{}
			}
			req.SSH[id] = sock
		case "build-context":
			name, val, _ := strings.Cut(v, "=")
			if req.Contexts == nil {
				req.Contexts = map[string]NamedContext{}
			}
			switch {
			case strings.HasPrefix(val, "docker-image://"):
				req.Contexts[name] = NamedContext{Image: strings.TrimPrefix(val, "docker-image://")}
			case strings.HasPrefix(val, "oci-layout://"):
				req.Contexts[name] = NamedContext{Layout: strings.TrimPrefix(val, "oci-layout://")}
			case strings.HasPrefix(val, "http://"):
				req.Contexts[name] = NamedContext{HTTP: val}
			default:
				req.Contexts[name] = NamedContext{Dir: val}
			}
		case "label":
			lk, lv, _ := strings.Cut(v, "=")
			if req.Labels == nil {
				req.Labels = map[string]string{}
			}
			req.Labels[lk] = lv
		case "allow":
			switch v {
			case "security.insecure":
				req.Sandbox.AllowInsecure = true
			case "network.host":
				req.Sandbox.AllowNetworkHost = true
			default:
				t.Fatalf("%s/args.txt: entitlement %q", c.Dir, v)
			}
		case "network":
			req.Sandbox.Network = llb.NetMode(v)
		case "platform":
			p, err := llb.ParsePlatform(v)
			if err != nil {
				t.Fatalf("%s/args.txt: %v", c.Dir, err)
			}
			req.Platforms = []llb.Platform{p}
		case "shm-size":
			n, err := units.RAMInBytes(v)
			if err != nil {
				t.Fatalf("%s/args.txt: --shm-size: %v", c.Dir, err)
			}
			req.Sandbox.ShmSize = n
		case "ulimit":
			u, err := executor.ParseUlimit(v)
			if err != nil {
				t.Fatalf("%s/args.txt: %v", c.Dir, err)
			}
			req.Sandbox.Ulimits = append(req.Sandbox.Ulimits, llb.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
		default:
			t.Fatalf("%s/args.txt: unknown flag %q", c.Dir, f)
		}
	}
	if err := ReadDockerfile(context.Background(), &req, filepath.Join(c.Dir, "Dockerfile")); err != nil {
		t.Fatal(err)
	}
	return req
}

// build runs one build of c with the context in ctxDir and state in
// rootDir, exporting an OCI tar, and reads the image back.
func build(t *testing.T, env *buildtest.Env, c buildtest.Case, ctxDir, rootDir string) run {
	t.Helper()
	req := caseRequest(t, env, c, ctxDir)
	out := filepath.Join(t.TempDir(), "out.tar")
	req.Outputs = []Output{{Type: OCI, Dest: out}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := state.Open(rootDir, state.Options{Lock: state.LockShared})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	b, err := New(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	res, err := b.Build(ctx, req, rec)
	r := run{res: res, progress: rec.log.String(), err: err}
	if err != nil {
		return r
	}
	img, err := buildtest.ReadOCITar(t, out)
	if err != nil {
		r.err = fmt.Errorf("reading the exported image %s: %w", out, err)
		return r
	}
	if err := validate.Image(img); err != nil {
		r.err = fmt.Errorf("the exported image is invalid: %w", err)
		return r
	}
	r.img = img
	return r
}

// stepStates is the final state of each Dockerfile step of a build
// ("CACHED", "DONE" or "ERROR"), by step name.
func stepStates(r run) map[string]string {
	instr := regexp.MustCompile(`\] (RUN|COPY|ADD|WORKDIR) `)
	steps := map[string]string{}
	if r.res == nil || r.res.Record == nil {
		return steps
	}
	for _, s := range r.res.Record.Steps {
		if !instr.MatchString(s.Name) {
			continue
		}
		switch {
		case s.Error != "":
			steps[s.Name] = "ERROR"
		case s.Cached:
			steps[s.Name] = "CACHED"
		default:
			steps[s.Name] = "DONE"
		}
	}
	return steps
}

// TestGolden builds every case and compares the image with its expected
// files.
func TestGolden(t *testing.T) {
	buildtest.RequireRootOverlay(t)
	env := buildtest.NewEnv(t)
	for _, dir := range buildtest.CaseDirs(t) {
		c := buildtest.LoadCase(t, dir)
		t.Run(c.Name, func(t *testing.T) {
			ctxDir := t.TempDir()
			if _, err := os.Stat(filepath.Join(dir, "context")); err == nil {
				buildtest.CopyContext(t, filepath.Join(dir, "context"), ctxDir)
			}
			r := build(t, env, c, ctxDir, t.TempDir())
			errFile := filepath.Join(dir, "error.txt")
			if want, err := os.ReadFile(errFile); err == nil {
				// Each line of error.txt is a substring the error must
				// contain (BuildKit tests often check several).
				wantErrs := strings.Split(strings.TrimSpace(string(want)), "\n")
				if r.err == nil {
					t.Fatalf("build succeeded, want an error containing %q\nprogress:\n%s", wantErrs, r.progress)
				}
				for _, wantErr := range wantErrs {
					// The message is printed to the progress output; the
					// returned error only carries the exit status.
					if !strings.Contains(r.err.Error(), wantErr) && !strings.Contains(r.progress, wantErr) {
						t.Fatalf("error %v: want it to contain %q\nprogress:\n%s", r.err, wantErr, r.progress)
					}
				}
				return
			}
			if r.err != nil {
				t.Fatalf("build: %v\nprogress:\n%s", r.err, r.progress)
			}
			skip, err := buildtest.BaseLayerCount(env.Base, r.img)
			if err != nil {
				t.Fatal(err)
			}
			layers, err := buildtest.LayersText(r.img, skip)
			if err != nil {
				t.Fatal(err)
			}
			all, err := r.img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			base := env.Base
			if skip == 0 {
				base = nil
			}
			cfg, err := buildtest.ConfigText(base, r.img, len(all)-skip)
			if err != nil {
				t.Fatal(err)
			}
			buildtest.CompareGolden(t, filepath.Join(dir, "layers.txt"), layers)
			buildtest.CompareGolden(t, filepath.Join(dir, "config.json"), env.Remote.Unexpand(cfg))
			if t.Failed() {
				t.Logf("progress:\n%s", r.progress)
			}
		})
	}
}

// TestGoldenCache rebuilds the cache case with the same --root: unchanged,
// with only a context file's mtime touched, and with one file changed.
func TestGoldenCache(t *testing.T) {
	buildtest.RequireRootOverlay(t)
	env := buildtest.NewEnv(t)
	c := buildtest.LoadCase(t, filepath.Join(buildtest.CasesDir(), "cache"))
	ctxDir := t.TempDir()
	buildtest.CopyContext(t, filepath.Join(c.Dir, "context"), ctxDir)
	root := t.TempDir()

	rebuild := func(what string) run {
		t.Helper()
		r := build(t, env, c, ctxDir, root)
		if r.err != nil {
			t.Fatalf("%s: %v\nprogress:\n%s", what, r.err, r.progress)
		}
		return r
	}
	first := rebuild("first build")
	firstSteps := stepStates(first)
	if len(firstSteps) != 4 {
		t.Fatalf("first build: want 4 RUN/COPY steps, got %v\nprogress:\n%s", firstSteps, first.progress)
	}
	for name, st := range firstSteps {
		if st != "DONE" {
			t.Errorf("first build: step %q is %s, want DONE", name, st)
		}
	}
	want := buildtest.LayerDigests(t, first.img)

	checkAll := func(what string, r run) {
		t.Helper()
		steps := stepStates(r)
		if len(steps) != len(firstSteps) {
			t.Errorf("%s: steps %v, want the same %d steps as the first build", what, steps, len(firstSteps))
		}
		for name, st := range steps {
			if st != "CACHED" {
				t.Errorf("%s: step %q is %s, want CACHED\nprogress:\n%s", what, name, st, r.progress)
			}
		}
		if got := buildtest.LayerDigests(t, r.img); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: layers differ from the first build:\n%s", what, buildtest.LineDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
		}
		// A fully cached rebuild is the same image, as in BuildKit: the
		// history times come from the cached results, not the clock.
		if got, want := buildtest.ImageDigest(t, r.img), buildtest.ImageDigest(t, first.img); got != want {
			cf1, _ := first.img.RawConfigFile()
			cf2, _ := r.img.RawConfigFile()
			t.Errorf("%s: image digest %s, want the first build's %s\nconfig diff:\n%s", what, got, want, buildtest.LineDiff(string(cf1), string(cf2)))
		}
	}
	checkAll("second build", rebuild("second build"))

	// Only the mtime changes: content-based cache keys must not notice.
	future := time.Now().Add(time.Hour)
	for _, f := range []string{"a.txt", "b.txt"} {
		if err := os.Chtimes(filepath.Join(ctxDir, f), future, future); err != nil {
			t.Fatal(err)
		}
	}
	checkAll("build after touching a.txt and b.txt", rebuild("build after touch"))

	// b.txt is read by the third step: the first two stay cached.
	if err := os.WriteFile(filepath.Join(ctxDir, "b.txt"), []byte("b changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := rebuild("build after changing b.txt")
	steps := stepStates(r)
	if len(steps) != len(firstSteps) {
		t.Fatalf("after changing b.txt: steps %v\nprogress:\n%s", steps, r.progress)
	}
	for name, st := range steps {
		wantSt := "CACHED"
		if strings.Contains(name, "b.txt") {
			wantSt = "DONE"
		}
		if st != wantSt {
			t.Errorf("after changing b.txt: step %q is %s, want %s", name, st, wantSt)
		}
	}
	got := buildtest.LayerDigests(t, r.img)
	if len(got) != len(want) {
		t.Fatalf("after changing b.txt: %d layers, want %d", len(got), len(want))
	}
	// Layers: base, COPY a.txt, RUN a, COPY b.txt, RUN b.
	for i := range got {
		same := got[i] == want[i]
		if wantSame := i < 3; same != wantSame {
			t.Errorf("after changing b.txt: layer %d unchanged=%v, want %v", i, same, wantSame)
		}
	}
}

// TestGoldenRemoteCache rebuilds the add-http and add-git cases with the
// same --root: an unchanged server answer is CACHED; a new commit on main
// re-runs the steps that read main and nothing else.
func TestGoldenRemoteCache(t *testing.T) {
	buildtest.RequireRootOverlay(t)
	env := buildtest.NewEnv(t)
	for _, name := range []string{"add-http", "add-git"} {
		t.Run(name, func(t *testing.T) {
			c := buildtest.LoadCase(t, filepath.Join(buildtest.CasesDir(), name))
			ctxDir := t.TempDir()
			root := t.TempDir()
			rebuild := func(what string) map[string]string {
				t.Helper()
				r := build(t, env, c, ctxDir, root)
				if r.err != nil {
					t.Fatalf("%s: %v\nprogress:\n%s", what, r.err, r.progress)
				}
				return stepStates(r)
			}
			first := rebuild("first build")
			if len(first) == 0 {
				t.Fatal("first build: no ADD steps in the progress")
			}
			for step, st := range rebuild("second build") {
				if st != "CACHED" {
					t.Errorf("second build: %q is %s, want CACHED", step, st)
				}
			}
			if name != "add-git" {
				return
			}
			env.Remote.Commit(t, c, "docs/readme.md", "changed\n")
			for step, st := range rebuild("build after a commit on main") {
				want := "CACHED"
				if strings.Contains(step, "main") {
					want = "DONE"
				}
				if st != want {
					t.Errorf("after a commit on main: %q is %s, want %s", step, st, want)
				}
			}
		})
	}
}
