package dockerfile

import (
	"github.com/builderdev/builder/llb"
	"strings"
	"testing"
)

// TestExpansionForms checks every substitution form of the shell lexer in
// ENV (expanded by the frontend) and that RUN is left to the shell.
func TestExpansionForms(t *testing.T) {
	t.Parallel()
	tests := []struct{ expr, want string }{
		{"${A:-d}", "abcabc"}, {"${U:-d}", "d"}, {"${E:-d}", "d"},
		{"${A-d}", "abcabc"}, {"${U-d}", "d"}, {"${E-d}", ""},
		{"${A:+x}", "x"}, {"${U:+x}", ""}, {"${E:+x}", ""},
		{"${A+x}", "x"}, {"${U+x}", ""}, {"${E+x}", "x"},
		{"${A#a*}", "bcabc"}, {"${A##a*}", ""}, {"${A#*c}", "abc"}, {"${A##*c}", ""},
		{"${A%c*}", "abcab"}, {"${A%%c*}", "ab"}, {"${A%b*}", "abca"},
		{"${A/b/X}", "aXcabc"}, {"${A//b/X}", "aXcaXc"},
		{"$A", "abcabc"}, {"${A}", "abcabc"}, {`\$A`, "$A"}, {"'$A'", "$A"},
	}
	for _, tt := range tests {
		df := "FROM busybox\nARG A=abcabc\nARG E=\nENV R=" + tt.expr + "\nRUN echo " + tt.expr + "\n"
		res := mustConvert(t, df, nil)
		got, _ := envList(res.Config.Config.Env).Get("R")
		if got != tt.want {
			t.Errorf("ENV R=%s: %q, want %q", tt.expr, got, tt.want)
		}
		if h := res.Config.History[len(res.Config.History)-1].CreatedBy; !strings.HasSuffix(h, "echo "+tt.expr+" # buildkit") {
			t.Errorf("RUN was expanded by the frontend: %q", h)
		}
	}
	_, _, err := convertString(t, "FROM busybox\nENV X=\"${NOPE:?must be set}\"\n", nil)
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:2:") || !strings.Contains(err.Error(), "must be set") {
		t.Errorf("${NOPE:?msg}: err = %v", err)
	}
}

// TestMultiPlatformGraphs converts one Dockerfile for two platforms, as a
// multi-platform build does: a FROM --platform=$BUILDPLATFORM stage without
// TARGET* args is the same vertex for both (the solver runs it once), with
// ARG TARGETARCH it is one vertex per target, still on the build platform;
// every RUN carries its stage's platform, and ShowPlatform names it.
func TestMultiPlatformGraphs(t *testing.T) {
	t.Parallel()
	const df = `FROM --platform=$BUILDPLATFORM busybox AS build
RUN echo build > /out
FROM --platform=$BUILDPLATFORM busybox AS cross
ARG TARGETARCH
RUN echo $TARGETARCH > /arch
FROM busybox
COPY --from=build /out /
COPY --from=cross /arch /
RUN uname -m
`
	host := hostPlatform()
	execs := func(p llb.Platform) map[string]*llb.Vertex {
		res := mustConvert(t, df, func(o *Options) { o.Platform = p; o.ShowPlatform = true })
		out := map[string]*llb.Vertex{}
		var walk func(v *llb.Vertex)
		walk = func(v *llb.Vertex) {
			if v == nil {
				return
			}
			if ex, ok := v.Op().(llb.ExecOp); ok {
				out[strings.Join(ex.Args, " ")] = v
			}
			for _, in := range v.Inputs() {
				walk(in)
			}
		}
		walk(res.State)
		return out
	}
	amd := execs(llb.Platform{OS: "linux", Architecture: "amd64"})
	arm := execs(llb.Platform{OS: "linux", Architecture: "arm64"})
	const build, cross, final = "/bin/sh -c echo build > /out", "/bin/sh -c echo $TARGETARCH > /arch", "/bin/sh -c uname -m"
	for _, k := range []string{build, cross, final} {
		if amd[k] == nil || arm[k] == nil {
			t.Fatalf("no RUN %q in the graphs (amd64: %v, arm64: %v)", k, amd[k] != nil, arm[k] != nil)
		}
	}
	if amd[build].Digest() != arm[build].Digest() {
		t.Errorf("BUILDPLATFORM stage without TARGET args: digests differ between targets")
	}
	if amd[cross].Digest() == arm[cross].Digest() {
		t.Errorf("BUILDPLATFORM stage with ARG TARGETARCH: same digest for both targets")
	}
	if amd[final].Digest() == arm[final].Digest() {
		t.Errorf("target stage: same RUN digest for both targets")
	}
	arrow := "->arm64" // BuildKit's name of a cross-compiling stage
	if host.Architecture == "arm64" {
		arrow = ""
	}
	for name, tt := range map[string]struct {
		v      *llb.Vertex
		want   llb.Platform
		prefix string
	}{
		"cross on arm64": {arm[cross], host, "[" + host.String() + arrow + " cross 2/2] "},
		"final on arm64": {arm[final], llb.Platform{OS: "linux", Architecture: "arm64"}, "[linux/arm64 stage-2 4/4] "},
		"final on amd64": {amd[final], llb.Platform{OS: "linux", Architecture: "amd64"}, "[linux/amd64 stage-2 4/4] "},
	} {
		if got := tt.v.Op().(llb.ExecOp).Platform; got != tt.want {
			t.Errorf("%s: exec platform %s, want %s", name, got, tt.want)
		}
		if !strings.HasPrefix(tt.v.Name(), tt.prefix) {
			t.Errorf("%s: progress name %q, want it to start with %q", name, tt.v.Name(), tt.prefix)
		}
	}
	if env := strings.Join(arm[cross].Op().(llb.ExecOp).Env, " "); !strings.Contains(env, "TARGETARCH=arm64") {
		t.Errorf("cross RUN for arm64: env %q lacks TARGETARCH=arm64", env)
	}
}
