package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/registrytest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestBuildPull checks docker's --pull: without it a FROM name the local
// store holds is used as stored; with it the name is resolved at the
// registry (whose tag moves between builds), and a name only the store
// holds fails.
func TestBuildPull(t *testing.T) {
	requireRootOverlay(t)
	root := t.TempDir()
	host := registrytest.NewInProcess(t)
	withMsg := func(msg string) v1.Image {
		img := runTestImage(t)
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cfg := cf.Config
		cfg.Env = append(cfg.Env, "MSG="+msg)
		out, err := mutate.Config(img, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	base := host + "/pull/base:1"
	registrytest.Push(t, withMsg("v1"), base)

	build := func(t *testing.T, dockerfile string, pull bool, tags ...string) (string, error) {
		t.Helper()
		dir := t.TempDir()
		ctxDir := filepath.Join(dir, "ctx")
		os.MkdirAll(ctxDir, 0o755)
		os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644)
		var log bytes.Buffer
		o := BuildOptions{ContextDir: ctxDir, Progress: "plain", Root: root, Pull: pull, Tags: tags}
		if len(tags) == 0 {
			o.Outputs = []Output{{Type: "local", Dest: filepath.Join(dir, "out"), Attrs: map[string]string{}}}
		}
		if err := Build(context.Background(), o, &log); err != nil {
			return log.String(), err
		}
		b, _ := os.ReadFile(filepath.Join(dir, "out", "seen"))
		return string(b), nil
	}
	// The store gets its own base:1 (MSG=local), built FROM the registry's.
	if log, err := build(t, "FROM "+base+"\nENV MSG=local\n", false, base, host+"/pull/onlylocal:1"); err != nil {
		t.Fatalf("build -t %s: %v\n%s", base, err, log)
	}
	consumer := "FROM " + base + "\nRUN echo $MSG > /seen\n"
	check := func(pull bool, want string) {
		t.Helper()
		got, err := build(t, consumer, pull)
		if err != nil || got != want+"\n" {
			t.Errorf("build --pull=%v: /seen %q, %v; want %q", pull, got, err, want)
		}
	}
	check(false, "local")
	check(true, "v1")
	registrytest.Push(t, withMsg("v2"), base) // the tag moves
	check(true, "v2")
	check(false, "local")

	// Only the store knows onlylocal:1: --pull asks the registry, which
	// does not.
	if log, err := build(t, "FROM "+host+"/pull/onlylocal:1\nRUN echo $MSG > /seen\n", true); err == nil {
		t.Errorf("build --pull FROM a name only the store holds succeeded:\n%s", log)
	} else if !strings.Contains(err.Error()+log, "onlylocal") {
		t.Errorf("error does not name the image: %v\n%s", err, log)
	}
	if got, err := build(t, "FROM "+host+"/pull/onlylocal:1\nRUN echo $MSG > /seen\n", false); err != nil || got != "local\n" {
		t.Errorf("build FROM a stored-only name: %q, %v", got, err)
	}
}
