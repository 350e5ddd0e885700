package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/exporter"
	imagestore "github.com/builderdev/builder/exporter/imagestore"
	"github.com/builderdev/builder/internal/containers"
	"github.com/builderdev/builder/state"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
)

// seedImages stores, without building, "app:1" (a base layer, an ENV
// and a RUN layer) and a dangling image in a new root.
func seedImages(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	images, err := root.Images()
	if err != nil {
		t.Fatal(err)
	}
	blobs := images.Blobs()
	layer := func(name string, size int) cache.Layer {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg})
		tw.Write(bytes.Repeat([]byte("x"), size))
		tw.Close()
		d, n, err := blobs.Put(context.Background(), bytes.NewReader(b.Bytes()), "", -1)
		if err != nil {
			t.Fatal(err)
		}
		return cache.Layer{MediaType: string(types.OCIUncompressedLayer), Digest: d, Size: n, DiffID: d}
	}
	// Whole seconds: a time's fraction changes the length of the config
	// JSON, and with it the sizes shown.
	t0 := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second)
	app := &exporter.Image{Blobs: blobs, Layers: []cache.Layer{layer("base", 3000), layer("run", 100)},
		Config: v1.ConfigFile{OS: "linux", Architecture: "amd64", Created: v1.Time{Time: t0},
			Config: v1.Config{Env: []string{"A=1"}, Cmd: []string{"sh"}},
			History: []v1.History{
				{Created: v1.Time{Time: t0}, CreatedBy: "ADD rootfs.tar / # a base image made for this test, with a long line"},
				{Created: v1.Time{Time: t0}, CreatedBy: "ENV A=1", Comment: "buildkit.dockerfile.v0", EmptyLayer: true},
				{Created: v1.Time{Time: t0}, CreatedBy: "RUN /bin/sh -c make # buildkit", Comment: "buildkit.dockerfile.v0"},
			}}}
	if _, err := images.Put(context.Background(), app, []string{"app:1", "registry.example.com/team/app:2"}); err != nil {
		t.Fatal(err)
	}
	dangling := &exporter.Image{Blobs: blobs, Layers: []cache.Layer{layer("other", 10)},
		Config: v1.ConfigFile{OS: "linux", Architecture: "amd64", Created: v1.Time{Time: t0.Add(time.Hour)}}}
	if _, err := images.Put(context.Background(), dangling, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func cliOut(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestImagesFormatAndFilters(t *testing.T) {
	root := seedImages(t)
	tests := []struct {
		args    []string
		want    []string // lines, trailing spaces trimmed
		wantErr string
	}{
		{args: []string{"--format", "{{.Repository}}:{{.Tag}} {{.Size}} {{.CompressedSize}}"},
			want: []string{"<none>:<none> 2.05kB 2.34kB", "app:1 6.66kB 7.31kB", "registry.example.com/team/app:2 6.66kB 7.31kB"}},
		{args: []string{"--filter", "dangling=true", "--format", "{{.Repository}} {{.CreatedSince}}"}, want: []string{"<none> About an hour ago"}},
		{args: []string{"-f", "dangling=false", "-f", "reference=app", "--format", "{{.Repository}}:{{.Tag}}"}, want: []string{"app:1"}},
		{args: []string{"--filter", "reference=*/*/app:2", "--format", "{{.Repository}}"}, want: []string{"registry.example.com/team/app"}},
		{args: []string{"-a", "--filter", "reference=nothing*"}, want: []string{"REPOSITORY   TAG   IMAGE ID   CREATED   SIZE"}},
		{args: []string{"--format", "table {{.Repository}}\t{{.Size}}", "app"}, want: []string{"REPOSITORY   SIZE", "app          6.66kB"}},
		{args: []string{"--filter", "label=x"}, wantErr: "invalid filter 'label'"},
		{args: []string{"--filter", "dangling=maybe"}, wantErr: "want true or false"},
		{args: []string{"--format", "{{.Nope}}"}, wantErr: "Nope"},
	}
	for _, tt := range tests {
		out, err := cliOut(t, newImagesCommand(), append([]string{"--root", root}, tt.args...)...)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("images %v: err %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		var got []string
		for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			got = append(got, strings.TrimRight(l, " "))
		}
		if err != nil || strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("images %v: %v\n%s\nwant\n%s", tt.args, err, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
	out, err := cliOut(t, newImagesCommand(), "--root", root, "--format", "json", "app:1")
	var row map[string]string
	if err != nil || json.Unmarshal([]byte(out), &row) != nil || row["Repository"] != "app" || row["Size"] != "6.66kB" || !strings.HasPrefix(row["Digest"], "sha256:") {
		t.Errorf("images --format json: %v %s", err, out)
	}
}

func TestInspectFormat(t *testing.T) {
	root := seedImages(t)
	out, err := cliOut(t, newInspectCommand(), "--root", root, "--format", "{{.Id}} {{join .Config.Env \",\"}} {{json .Config.Cmd}} {{.Size}} {{index .RepoTags 0}}", "app:1")
	f := strings.Fields(out)
	if err != nil || len(f) != 5 || !strings.HasPrefix(f[0], "sha256:") || f[1] != "A=1" || f[2] != `["sh"]` || f[4] != "app:1" || strings.ContainsAny(f[3], "e.") {
		t.Errorf("inspect --format: %v %q", err, out)
	}
	if _, err := cliOut(t, newInspectCommand(), "--root", root, "--format", "{{.Id", "app:1"); err == nil {
		t.Error("a bad template was accepted")
	}
	// --format json is the document on one line, as docker's; without a
	// format it is indented.
	compact, err := cliOut(t, newInspectCommand(), "--root", root, "--format", "json", "app:1")
	indented, _ := cliOut(t, newInspectCommand(), "--root", root, "app:1")
	var a, b []map[string]any
	if err != nil || strings.Count(compact, "\n") != 1 || !strings.HasPrefix(compact, `[{"Id":"sha256:`) ||
		json.Unmarshal([]byte(compact), &a) != nil || json.Unmarshal([]byte(indented), &b) != nil || !reflect.DeepEqual(a, b) {
		t.Errorf("inspect --format json: %v %.200q", err, compact)
	}

	// As docker: unset fields print their zero value, RootFS.Layers are
	// the diff IDs, Size is what builder images shows (unpacked).
	var digest, dangling string
	if err := withImageStore(root, func(s *imagestore.Store) error {
		im, err := s.Get("app:1")
		digest = im.Manifest.Digest.String()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if out, err := cliOut(t, newImagesCommand(), "--root", root, "-q", "-f", "dangling=true"); err != nil {
		t.Fatal(err)
	} else {
		dangling = strings.TrimSpace(out)
	}
	for _, tt := range []struct{ ref, format, want string }{
		{"app:1", "{{.Config.WorkingDir}}|{{.Config.User}}|{{.Parent}}|{{.Author}}|{{.Config.Labels}}|{{.Config.Entrypoint}}", "||||map[]|[]"},
		{"app:1", "{{.RepoDigests}}", "[app@" + digest + " registry.example.com/team/app@" + digest + "]"},
		{dangling, "{{.RepoTags}} {{.RepoDigests}} {{.Comment}}", "[] [] "},
		{"app:1", "{{.Comment}} {{.RootFS.Type}} {{len .RootFS.Layers}} {{index .RootFS.Layers 1}}", "buildkit.dockerfile.v0 layers 2 sha256:"},
		{"app:1", "{{.Size}} {{.Os}}/{{.Architecture}}", "6656 linux/amd64"},
		{"app:1", "{{.Metadata.LastTagTime}}", "0001-01-01 00:00:00 +0000 UTC"},
	} {
		out, err := cliOut(t, newInspectCommand(), "--root", root, "--format", tt.format, tt.ref)
		if err != nil || !strings.HasPrefix(out, tt.want) {
			t.Errorf("inspect --format %q %s: %v %q, want %q", tt.format, tt.ref, err, out, tt.want)
		}
	}
	if out, err := cliOut(t, newInspectCommand(), "--root", root, "--format", "{{.Created}}", "app:1"); err != nil {
		t.Error(err)
	} else if _, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(out)); err != nil {
		t.Errorf("inspect --format {{.Created}}: %q, want RFC 3339 as docker: %v", out, err)
	}
	if out, err := cliOut(t, newImagesCommand(), "--root", root, "--format", "{{.Size}}", "app:1"); err != nil || out != "6.66kB\n" {
		t.Errorf("images SIZE %q %v, want inspect's 6656 bytes", out, err)
	}
	// A field docker's document lacks is an error, not "<no value>".
	if _, err := cliOut(t, newInspectCommand(), "--root", root, "--format", "{{.Nope}}", "app:1"); err == nil || !strings.Contains(err.Error(), "Nope") {
		t.Errorf("inspect --format {{.Nope}}: %v", err)
	}
	// The JSON document has docker image inspect's keys.
	out, err = cliOut(t, newInspectCommand(), "--root", root, "app:1")
	var docs []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &docs) != nil || len(docs) != 1 {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	for _, k := range []string{"Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "DockerVersion", "Author", "Config", "Architecture", "Os", "Size", "RootFS", "Metadata", "Descriptor"} {
		if _, ok := docs[0][k]; !ok {
			t.Errorf("inspect JSON lacks %s", k)
		}
	}
	cfg, _ := docs[0]["Config"].(map[string]any)
	rootfs, _ := docs[0]["RootFS"].(map[string]any)
	if _, ok := cfg["WorkingDir"]; !ok || rootfs["Type"] != "layers" || rootfs["Layers"] == nil || docs[0]["Size"] != 6656.0 {
		t.Errorf("inspect JSON: Config %v, RootFS %v, Size %v", cfg, rootfs, docs[0]["Size"])
	}
}

func TestHistory(t *testing.T) {
	root := seedImages(t)
	out, err := cliOut(t, newHistoryCommand(), "--root", root, "app:1")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "IMAGE          CREATED") {
		t.Fatalf("history:\n%s", out)
	}
	for i, want := range []string{"RUN /bin/sh -c make # buildkit", "ENV A=1", "ADD rootfs.tar / # a base image made for thi…"} {
		if !strings.Contains(lines[i+1], want) {
			t.Errorf("history line %d %q lacks %q", i+1, lines[i+1], want)
		}
	}
	if !strings.HasPrefix(lines[2], "<missing>") || strings.HasPrefix(lines[1], "<missing>") || !strings.Contains(lines[1], "2.05kB") ||
		!strings.Contains(lines[2], "0B") || !strings.Contains(lines[1], "buildkit.dockerfile.v0") {
		t.Errorf("history:\n%s", out)
	}
	out, err = cliOut(t, newHistoryCommand(), "--root", root, "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "app:1")
	if err != nil || !strings.Contains(out, "with a long line|4.61kB") {
		t.Errorf("history --no-trunc --format: %v\n%s", err, out)
	}
	if _, err := cliOut(t, newHistoryCommand(), "--root", root, "nosuch"); err == nil {
		t.Error("history of a missing image succeeded")
	}
}

func TestImagePrune(t *testing.T) {
	root := seedImages(t)
	out, err := cliOut(t, newImageCommand(), "prune", "--root", root, "-f")
	if err != nil || !strings.Contains(out, "Deleted Images:\ndeleted: sha256:") || strings.Contains(out, "untagged") {
		t.Errorf("image prune: %v\n%s", err, out)
	}
	if out, _ := cliOut(t, newImagesCommand(), "--root", root, "-q"); len(strings.Fields(out)) != 1 {
		t.Errorf("after prune: %s", out)
	}
	if _, err := cliOut(t, newImageCommand(), "prune", "--root", root); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("prune without a terminal or -f: %v", err)
	}
	out, err = cliOut(t, newImageCommand(), "prune", "--root", root, "-a", "-f")
	if err != nil || !strings.Contains(out, "untagged: app:1") || !strings.Contains(out, "untagged: registry.example.com/team/app:2") {
		t.Errorf("image prune -a: %v\n%s", err, out)
	}
	if out, _ := cliOut(t, newImagesCommand(), "--root", root, "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("after prune -a: %s", out)
	}
}

// TestRmiImageInUse: as docker rmi, the last name of an image a container
// uses is refused (untagged with -f, the image kept), its ID needs -f for
// a stopped container and cannot be forced for a running one, and image
// prune -a leaves it.
func TestRmiImageInUse(t *testing.T) {
	root := seedImages(t)
	if out, err := cliOut(t, newTagCommand(), "--root", root, "app:1", "solo:1"); err != nil {
		t.Fatal(out, err)
	}
	var id digest.Digest
	if err := withImageStore(root, func(s *imagestore.Store) error {
		im, err := s.Get("solo:1")
		id = im.ID
		return err
	}); err != nil {
		t.Fatal(err)
	}
	short := id.Encoded()[:12]
	r, err := state.Open(root, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := r.Containers()
	if err != nil {
		t.Fatal(err)
	}
	ctr := &containers.Container{ID: strings.Repeat("c9", 32), Name: "c9", Image: "solo:1", ImageID: id.String(), State: containers.Running}
	// The container runs while its creator holds the running lock.
	stop, err := cs.Create(ctr)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stop() }()
	// Untagging a name leaves the image its other names.
	for _, ref := range []string{"app:1", "registry.example.com/team/app:2"} {
		if out, err := cliOut(t, newRmiCommand(), "--root", root, ref); err != nil || out != "Untagged: "+ref+"\n" {
			t.Fatalf("rmi %s: %v %q", ref, err, out)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"solo:1"}, "Error response: conflict: unable to delete solo:1 (must be forced) - container c9c9c9c9c9c9 is using its referenced image " + short},
		{[]string{"-f", short}, "Error response: conflict: unable to delete " + short + " (cannot be forced) - image is being used by running container c9c9c9c9c9c9"},
	} {
		if out, err := cliOut(t, newRmiCommand(), append([]string{"--root", root}, tt.args...)...); err == nil || err.Error() != tt.want {
			t.Errorf("rmi %v: %v %q, want %q", tt.args, err, out, tt.want)
		}
	}
	stop()
	stop = func() {}
	if _, err := cliOut(t, newRmiCommand(), "--root", root, short); err == nil || !strings.Contains(err.Error(), "(must be forced) - image is being used by stopped container c9c9c9c9c9c9") {
		t.Errorf("rmi ID used by a stopped container: %v", err)
	}
	// -f untags the last name; the image stays for the container.
	if out, err := cliOut(t, newRmiCommand(), "--root", root, "-f", "solo:1"); err != nil || out != "Untagged: solo:1\n" {
		t.Errorf("rmi -f solo:1: %v %q", err, out)
	}
	if _, err := cliOut(t, newImageCommand(), "prune", "--root", root, "-a", "-f"); err != nil {
		t.Fatal(err)
	}
	if out, _ := cliOut(t, newImagesCommand(), "--root", root, "-q", "--no-trunc"); strings.TrimSpace(out) != id.String() {
		t.Errorf("images after rmi -f and image prune -a: %q, want only %s (a container uses it)", out, id)
	}
	if out, err := cliOut(t, newRmiCommand(), "--root", root, "-f", short); err != nil || out != "Deleted: "+id.String()+"\n" {
		t.Errorf("rmi -f of a stopped container's image: %v %q", err, out)
	}
}

// TestImageSubcommands: builder image ls, rm, ... are builder images,
// rmi, ... as docker image ls is docker images.
func TestImageSubcommands(t *testing.T) {
	root := seedImages(t)
	run := func(args ...string) (string, error) { return cliOut(t, newRootCommand(), args...) }
	want, err := run("images", "--root", root, "--format", "{{.Repository}}:{{.Tag}}")
	if err != nil {
		t.Fatal(err)
	}
	for _, ls := range []string{"ls", "list"} {
		if got, err := run("image", ls, "--root", root, "--format", "{{.Repository}}:{{.Tag}}"); err != nil || got != want {
			t.Errorf("image %s: %q, %v; want %q (builder images)", ls, got, err, want)
		}
	}
	if _, err := run("image", "rm", "--root", root, "registry.example.com/team/app:2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := run("image", "ls", "--root", root, "--format", "{{.Repository}}"); strings.Contains(got, "registry.example.com") {
		t.Errorf("image rm left the tag:\n%s", got)
	}
	if got, err := run("image", "inspect", "--root", root, "--format", "{{.RepoTags}}", "app:1"); err != nil || strings.TrimSpace(got) != "[app:1]" {
		t.Errorf("image inspect: %q, %v", got, err)
	}
}
