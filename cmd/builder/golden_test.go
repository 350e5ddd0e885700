package main

// The golden suite itself (testdata/dockerfiles) runs in package build,
// through the library; the CLI's end-to-end tests share its harness,
// package internal/buildtest, through the names below.

import (
	"bufio"
	"regexp"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/buildtest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var update = buildtest.Update

// goldenEnv is what every end-to-end build builds against: the busybox
// base in an in-process registry (baseArgs BASE and BASE_DIGEST).
type goldenEnv struct {
	base     v1.Image
	baseArgs map[string]string
	remote   *buildtest.RemoteServers
}

func newGoldenEnv(t *testing.T) *goldenEnv {
	t.Helper()
	e := buildtest.NewEnv(t)
	return &goldenEnv{base: e.Base, baseArgs: e.BaseArgs, remote: e.Remote}
}

func requireRootOverlay(t *testing.T) {
	t.Helper()
	buildtest.RequireRootOverlay(t)
}

var (
	copyContext    = buildtest.CopyContext
	readOCITar     = buildtest.ReadOCITar
	extractTar     = buildtest.ExtractTar
	baseLayerCount = buildtest.BaseLayerCount
	layersText     = buildtest.LayersText
	compareGolden  = buildtest.CompareGolden
	lineDiff       = buildtest.LineDiff
	layerDigests   = buildtest.LayerDigests
	imageDigest    = buildtest.ImageDigest
)

// stepStates parses plain progress output into the final state of each
// Dockerfile step ("CACHED", "DONE" or "ERROR"), by step name.
func stepStates(progress string) map[string]string {
	header := regexp.MustCompile(`^#(\d+) (.*)$`)
	names := map[string]string{}
	states := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(progress))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := header.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		id, rest := m[1], m[2]
		name, ok := names[id]
		if !ok {
			names[id] = rest
			continue
		}
		switch {
		case rest == "CACHED":
			states[name] = "CACHED"
		case strings.HasPrefix(rest, "DONE"):
			states[name] = "DONE"
		case strings.HasPrefix(rest, "ERROR"):
			states[name] = "ERROR"
		}
	}
	steps := map[string]string{}
	instr := regexp.MustCompile(`\] (RUN|COPY|ADD|WORKDIR) `)
	for name, st := range states {
		if instr.MatchString(name) {
			steps[name] = st
		}
	}
	return steps
}
