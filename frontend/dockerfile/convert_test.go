package dockerfile

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/builderdev/builder/llb"
)

// checkInvariant verifies the layer/history pairing the exporter relies on:
// the non-empty history entries are the base's layers followed by the root
// chain's vertices, in order, with matching created_by texts.
func checkInvariant(t *testing.T, res *Result) {
	t.Helper()
	ch := chain(res.State)
	slices.Reverse(ch) // bottom first
	var nonEmpty []string
	for _, h := range res.Config.History {
		if !h.EmptyLayer {
			nonEmpty = append(nonEmpty, h.CreatedBy)
		}
	}
	base := len(res.Config.RootFS.DiffIDs)
	if want := base + len(ch); len(nonEmpty) != want {
		t.Fatalf("non-empty history entries = %d, want %d base layers + %d chain vertices\nhistory: %q", len(nonEmpty), base, len(ch), nonEmpty)
	}
	for i, v := range ch {
		if got, want := nonEmpty[base+i], v.Meta().Description[createdByKey]; got != want {
			t.Errorf("layer %d: history %q, vertex %q created_by %q", base+i, got, v.Name(), want)
		}
	}
	if img := baseImage(res.State); img == nil && base != 0 {
		t.Errorf("no base image in chain but %d base layers", base)
	}
}

func TestInstructions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		df    string
		mod   func(*Options)
		check func(t *testing.T, res *Result)
	}{
		{
			name: "run env cwd user from image config",
			df:   "FROM alpine:3\nRUN id\n",
			check: func(t *testing.T, res *Result) {
				op := res.State.Op().(llb.ExecOp)
				if op.Cwd != "/srv" || op.User != "app" {
					t.Errorf("cwd %q user %q", op.Cwd, op.User)
				}
				if !slices.Equal(op.Env, []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}) {
					t.Errorf("env %q", op.Env)
				}
				if !slices.Equal(op.Args, []string{"/bin/sh", "-c", "id"}) {
					t.Errorf("args %q", op.Args)
				}
				if len(op.Mounts) != 1 || op.Mounts[0] != (llb.Mount{Input: 0, Dest: "/"}) {
					t.Errorf("mounts %+v", op.Mounts)
				}
				if res.Config.Config.Labels["base"] != "alpine" {
					t.Errorf("labels not inherited: %v", res.Config.Config.Labels)
				}
			},
		},
		{
			name: "default PATH for images without one",
			df:   "FROM localhost:5000/base:1\nRUN true\n",
			check: func(t *testing.T, res *Result) {
				op := res.State.Op().(llb.ExecOp)
				if !slices.Contains(op.Env, "PATH="+defaultPathEnv) || !slices.Contains(res.Config.Config.Env, "PATH="+defaultPathEnv) {
					t.Errorf("env %q config %q", op.Env, res.Config.Config.Env)
				}
			},
		},
		{
			name: "exec form and network",
			df:   "FROM busybox\nRUN --network=none [\"echo\", \"a b\"]\nRUN --network=host echo\n",
			mod:  func(o *Options) { o.AllowNetworkHost = true },
			check: func(t *testing.T, res *Result) {
				host := res.State.Op().(llb.ExecOp)
				none := res.State.Inputs()[0].Op().(llb.ExecOp)
				if none.Network != llb.NetNone || !slices.Equal(none.Args, []string{"echo", "a b"}) {
					t.Errorf("none: %+v", none)
				}
				if host.Network != llb.NetHost {
					t.Errorf("host: %+v", host)
				}
				if got := res.Config.History[len(res.Config.History)-2].CreatedBy; got != "RUN echo a b # buildkit" {
					t.Errorf("history %q", got)
				}
			},
		},
		{
			name: "arg scoping",
			df:   "ARG G=global\nFROM busybox\nARG G\nARG L=local\nRUN echo\nENV E=$L-$G\n",
			mod:  func(o *Options) { o.BuildArgs = map[string]string{"L": "cli"} },
			check: func(t *testing.T, res *Result) {
				op := res.State.Op().(llb.ExecOp)
				if !slices.Contains(op.Env, "G=global") || !slices.Contains(op.Env, "L=cli") {
					t.Errorf("run env %q", op.Env)
				}
				for _, e := range res.Config.Config.Env {
					if strings.HasPrefix(e, "G=") || strings.HasPrefix(e, "L=") {
						t.Errorf("ARG persisted in config env: %q", e)
					}
				}
				if !slices.Contains(res.Config.Config.Env, "E=cli-global") {
					t.Errorf("config env %q", res.Config.Config.Env)
				}
				var run string
				for _, h := range res.Config.History {
					if strings.HasPrefix(h.CreatedBy, "RUN") {
						run = h.CreatedBy
					}
				}
				if run != "RUN |2 G=global L=cli /bin/sh -c echo # buildkit" {
					t.Errorf("run history %q", run)
				}
			},
		},
		{
			name: "arg not declared in stage is invisible",
			df:   "ARG G=global\nFROM busybox\nRUN echo $G\n",
			check: func(t *testing.T, res *Result) {
				for _, e := range res.State.Op().(llb.ExecOp).Env {
					if strings.HasPrefix(e, "G=") {
						t.Errorf("undeclared global arg visible: %q", e)
					}
				}
			},
		},
		{
			name: "workdir relative and owned by user",
			df:   "FROM busybox\nUSER 1000:1000\nWORKDIR a\nWORKDIR b/../c\nRUN pwd\n",
			check: func(t *testing.T, res *Result) {
				run := res.State.Op().(llb.ExecOp)
				if run.Cwd != "/a/c" || run.User != "1000:1000" {
					t.Errorf("cwd %q user %q", run.Cwd, run.User)
				}
				mk := res.State.Inputs()[0].Op().(llb.FileOp).Actions[0].Mkdir
				if mk == nil || mk.Path != "/a/c" || mk.Mode != 0o755 || !mk.MakeParents || *mk.Chown != (llb.Chown{User: "1000", Group: "1000"}) {
					t.Errorf("mkdir %+v", mk)
				}
				if res.Config.Config.WorkingDir != "/a/c" {
					t.Errorf("workdir %q", res.Config.Config.WorkingDir)
				}
			},
		},
		{
			name: "copy flags and dest",
			df:   "FROM busybox\nWORKDIR /app\nCOPY --chown=root:staff --chmod=755 --exclude=*.tmp src/ ./\nADD local.tar.gz /opt/\nCOPY --link a b /x/\n",
			check: func(t *testing.T, res *Result) {
				ch := chain(res.State)
				cp3 := ch[0].Op().(llb.FileOp)
				add := ch[1].Op().(llb.FileOp).Actions[0].Copy
				cp := ch[2].Op().(llb.FileOp).Actions[0].Copy
				if cp.Dest != "/app/" || cp.SrcPaths[0] != "/src" || cp.Chmod != "755" || *cp.Chown != (llb.Chown{User: "0", Group: "staff"}) ||
					!cp.AllowWildcard || !cp.DirContentsOnly || !cp.FollowSymlinks || !cp.CreateDestPath || cp.AttemptUnpack ||
					!slices.Equal(cp.ExcludePatterns, []string{"*.tmp"}) {
					t.Errorf("copy %+v", cp)
				}
				if !add.AttemptUnpack || add.Dest != "/opt/" {
					t.Errorf("add %+v", add)
				}
				if len(cp3.Actions) != 2 || cp3.Actions[1].Copy.Src != cp3.Actions[0].Copy.Src || cp3.Base != -1 {
					t.Errorf("multi-source copy %+v", cp3)
				}
				// One LocalOp for the whole build.
				locals := map[string]bool{}
				_ = llb.Walk(res.State, func(v *llb.Vertex) error {
					if op, ok := v.Op().(llb.LocalOp); ok {
						locals[string(v.Digest())] = true
						if op.Name != "context" || v.Name() != "[internal] load build context" {
							t.Errorf("local %+v %q", op, v.Name())
						}
					}
					return nil
				})
				if len(locals) != 1 {
					t.Errorf("%d LocalOps", len(locals))
				}
			},
		},
		{
			name: "copy on scratch has no base input",
			df:   "FROM scratch\nCOPY a /\n",
			check: func(t *testing.T, res *Result) {
				op := res.State.Op().(llb.FileOp)
				if op.Base != -1 || len(res.State.Inputs()) != 1 || op.Actions[0].Copy.Src != 0 {
					t.Errorf("op %+v inputs %d", op, len(res.State.Inputs()))
				}
				if res.Config.Config.WorkingDir != "/" || len(res.Config.Config.Env) != 1 {
					t.Errorf("scratch config %+v", res.Config.Config)
				}
			},
		},
		{
			name: "entrypoint resets cmd from base but not own",
			df:   "FROM busybox\nENTRYPOINT [\"/bin/app\"]\n",
			check: func(t *testing.T, res *Result) {
				if res.Config.Config.Cmd != nil || !slices.Equal(res.Config.Config.Entrypoint, []string{"/bin/app"}) {
					t.Errorf("cmd %q entrypoint %q", res.Config.Config.Cmd, res.Config.Config.Entrypoint)
				}
			},
		},
		{
			name: "cmd before entrypoint is kept; shell form uses SHELL",
			df:   "FROM busybox\nSHELL [\"/bin/bash\", \"-c\"]\nCMD run\nENTRYPOINT exec app\n",
			check: func(t *testing.T, res *Result) {
				if !slices.Equal(res.Config.Config.Cmd, []string{"/bin/bash", "-c", "run"}) ||
					!slices.Equal(res.Config.Config.Entrypoint, []string{"/bin/bash", "-c", "exec app"}) {
					t.Errorf("cmd %q entrypoint %q", res.Config.Config.Cmd, res.Config.Config.Entrypoint)
				}
			},
		},
		{
			name: "healthcheck none, maintainer, onbuild recorded",
			df:   "FROM busybox\nHEALTHCHECK NONE\nMAINTAINER me\nONBUILD RUN echo later\n",
			check: func(t *testing.T, res *Result) {
				c := res.Config
				if c.Config.Healthcheck == nil || !slices.Equal(c.Config.Healthcheck.Test, []string{"NONE"}) {
					t.Errorf("healthcheck %+v", c.Config.Healthcheck)
				}
				if c.Author != "me" || !slices.Equal(c.Config.OnBuild, []string{"RUN echo later"}) {
					t.Errorf("author %q onbuild %q", c.Author, c.Config.OnBuild)
				}
				if res.State.Op().Kind() != llb.KindImage {
					t.Errorf("metadata-only Dockerfile made ops")
				}
			},
		},
		{
			name: "onbuild trigger of base image runs",
			df:   "FROM localhost:5000/base:1\n",
			check: func(t *testing.T, res *Result) {
				op := res.State.Op().(llb.ExecOp)
				if !slices.Equal(op.Args, []string{"/bin/sh", "-c", "echo triggered"}) || !strings.Contains(res.State.Name(), "ONBUILD RUN echo triggered") {
					t.Errorf("trigger %q %q", op.Args, res.State.Name())
				}
				if res.Config.Config.OnBuild != nil {
					t.Errorf("triggers kept: %q", res.Config.Config.OnBuild)
				}
			},
		},
		{
			name: "empty image is scratch",
			df:   "FROM empty\nCOPY a /\n",
			check: func(t *testing.T, res *Result) {
				if op := res.State.Op().(llb.FileOp); op.Base != -1 {
					t.Errorf("base %d", op.Base)
				}
			},
		},
		{
			name: "names and locations",
			df:   "FROM busybox\nRUN echo \\\n  two lines\nCOPY a /\n",
			check: func(t *testing.T, res *Result) {
				cp := res.State
				run := cp.Inputs()[0]
				img := run.Inputs()[0]
				if img.Name() != "[1/3] FROM "+baseImage(res.State).Ref || run.Name() != "[2/3] RUN echo   two lines" || cp.Name() != "[3/3] COPY a /" {
					t.Errorf("names %q %q %q", img.Name(), run.Name(), cp.Name())
				}
				if l := run.Meta().Location; l != (llb.Location{File: "Dockerfile", Line: 2, EndLine: 3}) {
					t.Errorf("location %+v", l)
				}
				if !strings.HasPrefix(baseImage(res.State).Ref, "docker.io/library/busybox:latest@sha256:") {
					t.Errorf("ref %q", baseImage(res.State).Ref)
				}
			},
		},
		{
			name: "platform",
			df:   "FROM --platform=linux/arm64 busybox\nRUN true\n",
			mod:  func(o *Options) { o.Platform = llb.Platform{OS: "linux", Architecture: "arm", Variant: "v7"} },
			check: func(t *testing.T, res *Result) {
				if p := baseImage(res.State).Platform; p != (llb.Platform{OS: "linux", Architecture: "arm64"}) {
					t.Errorf("image platform %+v", p)
				}
				if c := res.Config; c.Architecture != "arm" || c.Variant != "v7" || c.OS != "linux" {
					t.Errorf("config platform %s/%s/%s", c.OS, c.Architecture, c.Variant)
				}
			},
		},
		{
			name: "no cache marks every vertex",
			df:   "FROM busybox\nCOPY a /\nRUN true\n",
			mod:  func(o *Options) { o.NoCache = true },
			check: func(t *testing.T, res *Result) {
				_ = llb.Walk(res.State, func(v *llb.Vertex) error {
					if !v.Meta().IgnoreCache {
						t.Errorf("%s not ignore-cache", v.Name())
					}
					return nil
				})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustConvert(t, tt.df, tt.mod)
			checkInvariant(t, res)
			tt.check(t, res)
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		df   string
		mod  func(*Options)
		want []string // substrings
	}{
		{"empty", "", nil, []string{"Dockerfile:1:", "cannot be empty"}},
		{"only comments", "# hi\n", nil, []string{"Dockerfile:"}},
		{"no stages", "ARG A=1\n", nil, []string{"Dockerfile:1:", "no stages"}},
		{"unknown instruction", "FROM busybox\nFOO bar\n", nil, []string{"Dockerfile:2:", "unknown instruction"}},
		{"add url bad checksum", "FROM busybox\n\nADD --checksum=sha256:nope https://example.com/a.tgz /\n", nil, []string{"Dockerfile:3:", "invalid checksum"}},
		{"copy git", "FROM busybox\nCOPY https://example.com/r.git /\n", nil, []string{"Dockerfile:2:", "can't be a git ref for COPY"}},
		{"add git bad query", "FROM busybox\nADD https://example.com/r.git?nope=1 /\n", nil, []string{"Dockerfile:2:", `unexpected query "nope"`}},
		{"add git keep-git-dir conflict", "FROM busybox\nADD --keep-git-dir=false https://example.com/r.git?keep-git-dir=true /\n", nil, []string{"Dockerfile:2:", "inconsistent keep-git-dir"}},
		{"add git checksum conflict", "FROM busybox\nADD --checksum=abc https://example.com/r.git?checksum=def /\n", nil, []string{"Dockerfile:2:", "checksum mismatch"}},
		{"copy url", "FROM busybox\nCOPY https://example.com/a /\n", nil, []string{"Dockerfile:2:", "can't be a URL"}},
		{"from typo", "FROM busybox AS build\nFROM busybox\nCOPY --from=biuld /a /\n", nil, []string{"Dockerfile:3:", "did you mean build?"}},
		{"copy from itself", "FROM busybox AS a\nCOPY --from=a /x /\n", nil, []string{"Dockerfile:2:", "COPY --from=a names the stage it is in: a stage cannot copy from itself"}},
		{"mount from itself", "FROM busybox AS a\nRUN --mount=from=a,target=/m true\n", nil, []string{"Dockerfile:2:", "cannot mount from itself"}},
		{"add git bad checksum", "FROM busybox\nADD --checksum=foobar https://example.com/r.git#v1 /x\n", nil, []string{"Dockerfile:2:", "invalid checksum foobar for Git URL, expected hex commit hash"}},
		{"unknown from", "FROM busybox AS builder\nFROM busybox\nCOPY --from=buildr /a /\n", nil, []string{"Dockerfile:3:", "buildr", "existing stages: builder"}},
		{"bad index", "FROM busybox\nCOPY --from=4 /a /\n", nil, []string{"Dockerfile:2:", "invalid stage index 4"}},
		{"later stage", "FROM busybox AS a\nCOPY --from=b /x /\nFROM busybox AS b\n", func(o *Options) { o.Target = "a" }, []string{"Dockerfile:2:", "defined before current stage"}},
		{"undefined from var", "FROM $NOPE\n", nil, []string{"Dockerfile:1:", "undefined variable NOPE"}},
		{"undefined from var partial", "FROM ${REG}/busybox\n", nil, []string{"Dockerfile:1:", "undefined variable REG"}},
		{"resolver error", "FROM nosuch:1\n", nil, []string{"Dockerfile:1:", "nosuch:1: not found"}},
		{"from var expansion", "FROM busybox\nARG S=a\nCOPY --from=$S /a /\n", nil, []string{"Dockerfile:3:", "variable expansion is not supported for --from"}},
		{"bad chmod", "FROM busybox\nCOPY --chmod=999 a /\n", nil, []string{"Dockerfile:2:", "invalid chmod"}},
		{"bad chmod digits", "FROM busybox\nCOPY --chmod=64a a /\n", nil, []string{"Dockerfile:2:", "invalid chmod parameter: '64a'. it should be octal string and between 0 and 07777"}},
		{"bad chmod symbolic", "FROM busybox\nCOPY --chmod=u+q a /\n", nil, []string{"Dockerfile:2:", "invalid chmod parameter \"u+q\""}},
		{"bad signal", "FROM busybox\nSTOPSIGNAL SIGNOPE\n", nil, []string{"Dockerfile:2:", "invalid signal"}},
		{"bad expose", "FROM busybox\nEXPOSE 80/xyz\n", nil, []string{"Dockerfile:2:", "invalid proto"}},
		{"bad network", "FROM busybox\nRUN --network=bridge true\n", nil, []string{"Dockerfile:2:", "network"}},
		{"bad platform", "FROM --platform=nope/amd64 busybox\n", nil, []string{"Dockerfile:1:", "platform"}},
		{"bad ref", "FROM Busy:box:x\n", nil, []string{"Dockerfile:1:", "invalid reference"}},
		{"bad stage name", "FROM busybox AS 1abc\n", nil, []string{"Dockerfile:1:", "invalid name for build stage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := convertString(t, tt.df, tt.mod)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			var de *Error
			if !errors.As(err, &de) || de.File != "Dockerfile" || de.Line < 1 {
				t.Errorf("error %q is not a located *Error", err)
			}
		})
	}
}

// TestTargetErrors: a --target that names no stage gets a suggestion and
// no Dockerfile location (the flag is not a Dockerfile line).
func TestTargetErrors(t *testing.T) {
	t.Parallel()
	for target, want := range map[string]string{
		"c":     `target stage "c" could not be found (did you mean a? existing stages: a, b, build)`,
		"biuld": `target stage "biuld" could not be found (did you mean build? existing stages: a, b, build)`,
	} {
		_, _, err := convertString(t, "FROM busybox AS a\nFROM busybox AS b\nFROM busybox AS build\n", func(o *Options) { o.Target = target })
		if err == nil || err.Error() != want {
			t.Errorf("--target=%s: %v, want %q", target, err, want)
		}
		var de *Error
		if errors.As(err, &de) {
			t.Errorf("--target=%s: error located at %s:%d", target, de.File, de.Line)
		}
	}
}

func TestUnneededStagesNotResolved(t *testing.T) {
	t.Parallel()
	df := "FROM alpine:3 AS a\nRUN a\nFROM localhost:5000/base:1 AS b\nFROM busybox AS c\nCOPY --from=a /x /x\n"
	res, r, err := convertString(t, df, func(o *Options) { o.Target = "c" })
	if err != nil {
		t.Fatal(err)
	}
	if got := r.resolved(); !slices.Equal(got, []string{"alpine:3", "busybox"}) {
		t.Errorf("resolved %q", got)
	}
	if res.Target != "c" {
		t.Errorf("target %q", res.Target)
	}
	// Stage b is broken but not needed.
	df = "FROM busybox AS ok\nFROM nosuch AS broken\nRUN x\n"
	if _, _, err := convertString(t, df, func(o *Options) { o.Target = "ok" }); err != nil {
		t.Errorf("unneeded broken stage: %v", err)
	}
}

func TestDigestStability(t *testing.T) {
	t.Parallel()
	df := "ARG V=1\nFROM busybox AS b\nARG V\nRUN echo $V > /v\nFROM alpine:3\nCOPY --from=b /v /v\nWORKDIR /x\nRUN cat /v\n"
	a := mustConvert(t, df, nil)
	b := mustConvert(t, df, nil)
	if a.State.Digest() != b.State.Digest() {
		t.Errorf("digests differ: %s %s", a.State.Digest(), b.State.Digest())
	}
	c := mustConvert(t, df, func(o *Options) { o.BuildArgs = map[string]string{"V": "2"} })
	if c.State.Digest() == a.State.Digest() {
		t.Error("build arg change did not change the digest")
	}
	d := mustConvert(t, df, func(o *Options) { o.NoCache = true; o.Filename = "other.Dockerfile" })
	if d.State.Digest() != a.State.Digest() {
		t.Error("metadata changed the digest")
	}
}

func TestStageNameCaseInsensitiveFrom(t *testing.T) {
	t.Parallel()
	res := mustConvert(t, "FROM busybox AS Build\nRUN x\nFROM scratch\nCOPY --from=BUILD /x /\n", nil)
	cp := res.State.Op().(llb.FileOp)
	src := res.State.Inputs()[cp.Actions[0].Copy.Src]
	if _, ok := src.Op().(llb.ExecOp); !ok {
		t.Errorf("source %q", src.Name())
	}
	if !strings.HasPrefix(src.Name(), "[build 2/2] RUN x") {
		t.Errorf("name %q", src.Name())
	}
}

func TestParseIgnore(t *testing.T) {
	t.Parallel()
	in := "\xEF\xBB\xBF# comment\n\n  node_modules  \n/build/\n!build/keep\n*.md\n ! README.md\n./a/../b\n"
	got, err := ParseIgnore(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"node_modules", "build", "!build/keep", "*.md", "!README.md", "b"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
}

func TestNoResolver(t *testing.T) {
	t.Parallel()
	if _, err := Convert(context.Background(), Options{Dockerfile: []byte("FROM scratch\n")}); err == nil {
		t.Error("nil resolver accepted")
	}
}
