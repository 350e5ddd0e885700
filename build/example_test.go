package build_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/state"
)

// quiet is a build.Reporter that shows nothing but warnings.
type quiet struct{}

func (quiet) Status(solver.Status)      {}
func (quiet) Log(solver.Log)            {}
func (quiet) Warn(line int, msg string) { log.Printf("warning: line %d: %s", line, msg) }

// Example builds a Dockerfile into the local image store of a fresh state
// root, names it, and writes its files to a directory.
func Example() {
	dir, err := os.MkdirTemp("", "build-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctxDir, out := filepath.Join(dir, "context"), filepath.Join(dir, "out")
	os.Mkdir(ctxDir, 0o755)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nCOPY hello.txt /\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "hello.txt"), []byte("hello\n"), 0o644)

	// The root owns the cache, snapshots and image store; builds hold it
	// shared, so that `builder prune` waits for them.
	root, err := state.Open(filepath.Join(dir, "root"), state.Options{Lock: state.LockShared})
	if err != nil {
		log.Fatal(err)
	}
	defer root.Close()
	b, err := build.New(root, nil)
	if err != nil {
		log.Fatal(err)
	}
	req := build.Request{
		ContextDir: ctxDir,
		Tags:       []string{"hello"},
		BuildArgs:  map[string]string{"SOURCE_DATE_EPOCH": "0"},
		Outputs:    []build.Output{{Type: build.Local, Dest: out}},
	}
	if err := build.ReadDockerfile(context.Background(), &req, filepath.Join(ctxDir, "Dockerfile")); err != nil {
		log.Fatal(err)
	}
	res, err := b.Build(context.Background(), req, quiet{})
	if err != nil {
		log.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(out, "hello.txt"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Names)
	fmt.Print(string(data))
	fmt.Println(res.ImageID.Algorithm(), res.Descriptor.MediaType)
	// Output:
	// [docker.io/library/hello:latest]
	// hello
	// sha256 application/vnd.oci.image.manifest.v1+json
}
