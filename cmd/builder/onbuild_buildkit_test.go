package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/registrytest"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// BuildKit's ONBUILD tests whose ONBUILD image is built first and then
// pushed (or written to an OCI layout) for a second build
// (frontend/dockerfile/dockerfile_onbuild_test.go).

// TestOnBuildNewDeps is BuildKit's testOnBuildNewDeps: the triggers of a
// pushed image name an image (COPY --from) and a stage of the child
// Dockerfile (RUN --mount from=) that only exist when they run. Adapted:
// the image the trigger copies from is the test busybox instead of alpine
// (its /etc/passwd instead of /etc/alpine-release).
func TestOnBuildNewDeps(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	host := strings.SplitN(env.baseArgs["BASE"], "/", 2)[0]
	root := t.TempDir()
	build := func(what, df, tag string) map[string]string {
		t.Helper()
		ctxDir := t.TempDir()
		writeFiles(t, ctxDir, map[string]string{"Dockerfile": df})
		img, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs})
		if err != nil {
			t.Fatalf("%s: %v\nprogress:\n%s", what, err, progress)
		}
		if tag != "" {
			registrytest.Push(t, img, tag)
		}
		return imageFiles(t, img)
	}
	target := host + "/buildkit/testonbuilddeps:base"
	build("onbuild image", "ARG BASE\nFROM $BASE\nONBUILD COPY --from="+env.baseArgs["BASE"]+" /etc/passwd /out/alpine-release2\n", target)
	files := build("child", "FROM "+target+" AS base\nRUN cat /out/alpine-release2 > /out/alpine-release3\nFROM scratch\nCOPY --from=base /out /\n", "")
	if len(files["alpine-release3"]) <= 5 {
		t.Errorf("alpine-release3 = %q, want the copied file", files["alpine-release3"])
	}

	target2 := host + "/buildkit/testonbuilddeps:base2"
	build("nested onbuild image", "ARG BASE\nFROM $BASE\nONBUILD RUN --mount=type=bind,target=/in,from=inputstage mkdir /out && cat /in/foo > /out/bar && cat /in/out/alpine-release2 > /out/bar2\n", target2)
	files = build("nested child", `FROM `+target+` AS inputstage
RUN cat /out/alpine-release2 > /out/alpine-release4
RUN echo -n foo > /foo
FROM `+target2+` AS base
RUN echo -n bar3 > /out/bar3
FROM scratch
COPY --from=base /out /
`, "")
	if files["bar"] != "foo" {
		t.Errorf("bar = %q, want foo", files["bar"])
	}
	if len(files["bar2"]) <= 5 {
		t.Errorf("bar2 = %q, want the copied file", files["bar2"])
	}
	if files["bar3"] != "bar3" {
		t.Errorf("bar3 = %q, want bar3", files["bar3"])
	}
}

// TestOnBuildNamedContext is BuildKit's testOnBuildNamedContext: an image
// from an OCI layout, used as a named context (oci-layout://PATH@DIGEST),
// has a trigger that copies from a stage of the child Dockerfile.
func TestOnBuildNamedContext(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nONBUILD COPY --from=otherstage /testfile /out/foo\n"})
	img, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: ctxDir, Root: t.TempDir(), BuildArgs: env.baseArgs})
	if err != nil {
		t.Fatalf("onbuild image: %v\nprogress:\n%s", err, progress)
	}
	layoutDir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	dgst, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ctxDir = t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": `ARG BASE
FROM $BASE AS otherstage
RUN echo -n "hello" > /testfile
FROM base AS inputstage
FROM scratch
COPY --from=inputstage /out/foo /bar
`})
	out, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: ctxDir, Root: t.TempDir(), BuildArgs: env.baseArgs,
		BuildContexts: []string{"base=oci-layout://" + layoutDir + "@" + dgst.String()}})
	if err != nil {
		t.Fatalf("child: %v\nprogress:\n%s", err, progress)
	}
	if got := imageFiles(t, out)["bar"]; got != "hello" {
		t.Errorf("bar = %q, want hello", got)
	}
}

// TestOnBuildClearedPushed is BuildKit's testOnBuildCleared as written:
// the image built FROM a pushed ONBUILD image runs the trigger once and
// has no ONBUILD of its own, so an image built FROM it (pushed too) does
// not run it again. (The golden case onbuild-cleared does the same with
// stages.)
func TestOnBuildClearedPushed(t *testing.T) {
	requireRootOverlay(t)
	env := newGoldenEnv(t)
	host := strings.SplitN(env.baseArgs["BASE"], "/", 2)[0]
	root := t.TempDir()
	build := func(what, df, tag string) map[string]string {
		t.Helper()
		ctxDir := t.TempDir()
		writeFiles(t, ctxDir, map[string]string{"Dockerfile": df})
		img, progress, _, err := e2eBuild(t, BuildOptions{ContextDir: ctxDir, Root: root, BuildArgs: env.baseArgs})
		if err != nil {
			t.Fatalf("%s: %v\nprogress:\n%s", what, err, progress)
		}
		if tag != "" {
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if want := tag == host+"/buildkit/testonbuild:base"; (len(cf.Config.OnBuild) > 0) != want {
				t.Errorf("%s: OnBuild = %q", what, cf.Config.OnBuild)
			}
			registrytest.Push(t, img, tag)
		}
		return imageFiles(t, img)
	}
	target := host + "/buildkit/testonbuild:base"
	build("onbuild image", "ARG BASE\nFROM $BASE\nONBUILD RUN mkdir -p /out && echo -n 11 >> /out/foo\n", target)
	target2 := host + "/buildkit/testonbuild:child"
	build("child", "FROM "+target+"\n", target2)
	files := build("grandchild", "FROM "+target2+" AS base\nFROM scratch\nCOPY --from=base /out /\n", "")
	if files["foo"] != "11" {
		t.Errorf("foo = %q, want 11 (the trigger ran once)", files["foo"])
	}
}
