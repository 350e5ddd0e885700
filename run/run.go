package run

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/exporter"
	imagestore "github.com/builderdev/builder/exporter/imagestore"
	"github.com/builderdev/builder/internal/containers"
	"github.com/builderdev/builder/internal/pty"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/registry"
	"github.com/builderdev/builder/solver/ops"
	"github.com/builderdev/builder/state"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Options is everything `builder run` was asked to do.
type Options struct {
	// Image is "oci-archive:FILE", "oci:DIR", or a name, ID or digest of
	// the local image store, or a registry reference.
	Image string
	// Name names the container (docker run --name); "" picks one.
	Name string
	// Pull is docker run's --pull: "missing" (the default: the local
	// store first, then the registry), "always" (the registry, even for
	// a stored name) or "never" (the local store only).
	Pull string
	// Registry returns the registry client's options for the open root
	// (TLS, insecure hosts, timeouts, its state directory).
	Registry func(root *state.Root, blobs *cache.BlobStore) registry.Options
	// Platform is --platform: which image of a multi-platform image runs
	// ("" = the host's, else the only one).
	Platform string
	// Args replace the image's Cmd (and follow the entrypoint).
	Args []string
	// Entrypoint, when set (Entrypoint != nil), replaces the image's
	// entrypoint and drops its Cmd, as docker run --entrypoint does.
	Entrypoint  *string
	Remove      bool
	Interactive bool
	Tty         bool
	Network     string
	Memory      int64
	Hostname    string
	Env         []string
	Workdir     string
	User        string
	// Root is the state root directory.
	Root string
	// MaxLayerSize bounds each layer's uncompressed size (0 = the
	// default of ops.DefaultMaxLayerSize).
	MaxLayerSize int64
}

// IO are the streams of `builder run`: the process's when there is no
// tty, the terminal's otherwise.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// maxIndexSize bounds index.json and manifests read from an OCI layout.
const maxIndexSize = registry.MaxManifestSize

// registryOptions are o.Registry's options, the defaults without it.
func (o Options) registryOptions(root *state.Root, blobs *cache.BlobStore) registry.Options {
	if o.Registry != nil {
		return o.Registry(root, blobs)
	}
	return registry.Options{Blobs: blobs, StateDir: root.RegistryDir()}
}

// runImage is an image ready to run: its config and layers (in the blob
// store).
type runImage struct {
	config *v1.ConfigFile
	layers []cache.Layer
	// id is the config's digest (the image ID).
	id digest.Digest
}

// Run runs o.Image and returns the command's exit code, or an error when
// it could not run.
func Run(ctx context.Context, o Options, stdio IO) (int, error) {
	if err := o.validate(); err != nil {
		return 0, err
	}
	// builder prune keeps off while the container's snapshots are in use.
	root, err := state.Open(o.Root, state.Options{Lock: state.LockShared})
	if err != nil {
		return 0, err
	}
	defer root.Close()
	store, err := root.Cache()
	if err != nil {
		return 0, err
	}
	// Layers a build pushed by mount from a remote cache are fetched now.
	store.Blobs().SetFetcher(registry.New(o.registryOptions(root, store.Blobs())))
	img, err := loadRunImage(ctx, o, root, store.Blobs())
	if err != nil {
		return 0, err
	}
	if arch := img.config.Architecture; arch != "" {
		if err := executor.CheckEmulation(llb.Platform{Architecture: arch}.Normalize().Architecture); err != nil {
			return 0, fmt.Errorf("running %s: %w", o.Image, err)
		}
	}
	sn, err := root.Snapshots()
	if err != nil {
		return 0, err
	}
	top, err := ops.UnpackLayers(ctx, sn, store.Blobs(), img.layers, ops.UnpackOptions{MaxSize: o.MaxLayerSize})
	if err != nil {
		return 0, fmt.Errorf("unpacking %s: %w", o.Image, err)
	}
	spec, err := runSpec(o, img.config)
	if err != nil {
		return 0, err
	}
	ex, err := root.Executor()
	if err != nil {
		return 0, err
	}
	if w := ex.CgroupWarning(); w != "" {
		fmt.Fprintf(stdio.Stderr, "WARNING: %s\n", w)
	}
	cs, err := root.Containers()
	if err != nil {
		return 0, err
	}
	// The container is recorded (under ROOT/containers) before its
	// snapshot exists, so that no snapshot is ever left without a record
	// that builder rm can find.
	id := randomHex(32)
	ctr := &containers.Container{ID: id, Name: o.Name, Image: o.Image, ImageID: img.id.String(), Command: spec.Args,
		Created: time.Now().UTC(), State: containers.Created, Snapshot: "run-" + id, Pid: os.Getpid()}
	release, err := cs.Create(ctr)
	if err != nil {
		return 0, err
	}
	defer release()
	removeCtr := func() {
		if err := cs.Delete(context.WithoutCancel(ctx), sn, ctr); err != nil {
			fmt.Fprintf(stdio.Stderr, "WARNING: %v\n", err)
		}
	}
	mounts, err := sn.Prepare(ctx, ctr.Snapshot, top)
	if err != nil {
		removeCtr()
		return 0, fmt.Errorf("preparing the container's filesystem: %w", err)
	}
	code := 125
	if o.Remove {
		defer removeCtr()
	} else {
		defer func() {
			ctr.State, ctr.ExitCode, ctr.FinishedAt = containers.Exited, code, time.Now().UTC()
			if err := cs.Write(ctr); err != nil {
				fmt.Fprintf(stdio.Stderr, "WARNING: %v\n", err)
			}
		}()
	}
	ctr.State, ctr.StartedAt = containers.Running, time.Now().UTC()
	if err := cs.Write(ctr); err != nil {
		return 0, err
	}
	spec.Hostname = o.Hostname
	if spec.Hostname == "" {
		spec.Hostname = id[:12]
	}
	for _, m := range mounts {
		spec.Rootfs = append(spec.Rootfs, executor.Mount{Type: m.Type, Source: m.Source, Target: "/", Options: m.Options})
	}

	var runErr error
	if o.Tty {
		runErr = runWithTty(ctx, ex, spec, o.Interactive, stdio)
	} else {
		if o.Interactive {
			spec.Stdin = stdio.Stdin
		}
		spec.Stdout, spec.Stderr = stdio.Stdout, stdio.Stderr
		_, runErr = ex.Run(ctx, spec)
	}
	c, err := processExitCode(ctx, runErr, stdio.Stderr)
	if err != nil {
		return 0, err
	}
	code = c
	return code, nil
}

// validate checks the options before anything runs.
func (o Options) validate() error {
	switch o.Network {
	case "", "host", "none", "default":
	default:
		return fmt.Errorf("--network %q: must be host or none", o.Network)
	}
	switch o.Pull {
	case "", "missing", "always", "never":
	default:
		return fmt.Errorf("--pull %q: must be always, missing or never", o.Pull)
	}
	if !strings.HasPrefix(o.Image, "oci:") && !strings.HasPrefix(o.Image, "oci-archive:") {
		if err := exporter.ValidateReference(o.Image); err != nil {
			return fmt.Errorf("image %q: %w", o.Image, err)
		}
	}
	if o.Name != "" && !containers.ValidName(o.Name) {
		return fmt.Errorf("invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", o.Name)
	}
	return nil
}

// processExitCode is the exit code of a container's process as docker run
// reports it: the process's, 126/127 when it could not start (the
// message on stderr), 130 when interrupted; an error when it could not
// run at all.
func processExitCode(ctx context.Context, runErr error, stderr io.Writer) (int, error) {
	var ee *executor.ExitError
	var se *executor.StartError
	switch {
	case runErr == nil:
		return 0, nil
	case errors.As(runErr, &se):
		// docker run: 127 for a command not found, 126 not executable.
		fmt.Fprintf(stderr, "ERROR: %v\n", runErr)
		return se.Code, nil
	case errors.As(runErr, &ee):
		if ee.OOMKilled {
			fmt.Fprintf(stderr, "%v\n", ee)
		}
		return ee.Code, nil
	case ctx.Err() != nil:
		return 130, nil
	}
	return 0, runErr
}

// runSpec makes the process of o from the image config, as docker run
// does: -e overrides the image's variables, --entrypoint drops the image's
// Cmd, arguments replace Cmd.
func runSpec(o Options, cfg *v1.ConfigFile) (executor.Spec, error) {
	c := cfg.Config
	entry := c.Entrypoint
	cmd := c.Cmd
	if o.Entrypoint != nil {
		entry, cmd = nil, nil
		if *o.Entrypoint != "" {
			entry = []string{*o.Entrypoint}
		}
	}
	if len(o.Args) > 0 {
		cmd = o.Args
	}
	args := append(append([]string(nil), entry...), cmd...)
	if len(args) == 0 {
		return executor.Spec{}, errors.New("no command specified (the image has no Entrypoint or Cmd)")
	}
	env := append([]string(nil), c.Env...)
	if lookupVar(env, "PATH") == "" {
		env = append(env, "PATH="+registryDefaultPath)
	}
	for _, e := range o.Env {
		k, _, _ := strings.Cut(e, "=")
		env = removeVar(env, k)
		env = append(env, e)
	}
	if o.Tty && lookupVar(env, "TERM") == "" {
		env = append(env, "TERM=xterm")
	}
	s := executor.Spec{
		Args:    args,
		Env:     env,
		Cwd:     c.WorkingDir,
		User:    c.User,
		Network: executor.NetworkHost,
		Limits:  executor.Limits{Memory: o.Memory},
	}
	if o.Network == "none" {
		s.Network = executor.NetworkNone
	}
	if o.Workdir != "" {
		s.Cwd = o.Workdir
	}
	if s.Cwd != "" && !path.IsAbs(s.Cwd) {
		return executor.Spec{}, fmt.Errorf("the working directory %q is not absolute", s.Cwd)
	}
	if o.User != "" {
		s.User = o.User
	}
	return s, nil
}

// registryDefaultPath is Docker's PATH for images that set none.
const registryDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func lookupVar(env []string, k string) string {
	v := ""
	for _, e := range env {
		if kk, vv, _ := strings.Cut(e, "="); kk == k {
			v = vv
		}
	}
	return v
}

func removeVar(env []string, k string) []string {
	out := env[:0]
	for _, e := range env {
		if kk, _, _ := strings.Cut(e, "="); kk != k {
			out = append(out, e)
		}
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// runWithTty runs spec on a new pty: the host terminal (when stdin is
// one) goes to raw mode and back, window size changes are forwarded, the
// pty's output is copied to stdout and, with interactive, stdin to the
// pty.
func runWithTty(ctx context.Context, ex *executor.Executor, spec executor.Spec, interactive bool, stdio IO) error {
	master, slave, err := pty.Open()
	if err != nil {
		return err
	}
	defer master.Close()
	inFd := -1
	if f, ok := stdio.Stdin.(*os.File); ok && pty.IsTerminal(int(f.Fd())) {
		inFd = int(f.Fd())
	}
	outFd := -1
	if f, ok := stdio.Stdout.(*os.File); ok && pty.IsTerminal(int(f.Fd())) {
		outFd = int(f.Fd())
	}
	resize := func() {
		for _, fd := range []int{outFd, inFd} {
			if fd < 0 {
				continue
			}
			if sz, err := pty.GetSize(fd); err == nil {
				_ = pty.SetSize(int(master.Fd()), sz)
				return
			}
		}
	}
	resize()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, unix.SIGWINCH)
	defer signal.Stop(winch)
	go func() {
		for range winch {
			resize()
		}
	}()
	if interactive && inFd >= 0 {
		restore, err := pty.MakeRaw(inFd)
		if err != nil {
			slave.Close()
			return err
		}
		defer restore()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Ends with EIO once every holder of the slave has closed it.
		_, _ = io.Copy(stdio.Stdout, master)
	}()
	if interactive && stdio.Stdin != nil {
		// Never waited for: a read of the host's stdin cannot be
		// interrupted, and the process is gone anyway.
		go func() { _, _ = io.Copy(master, stdio.Stdin) }()
	}
	spec.Stdin, spec.Stdout, spec.Stderr, spec.Tty = slave, slave, slave, true
	_, err = ex.Run(ctx, spec)
	slave.Close()
	wg.Wait()
	return err
}

// loadRunImage finds the image o.Image names and makes sure its layers
// are in blobs.
func loadRunImage(ctx context.Context, o Options, root *state.Root, blobs *cache.BlobStore) (*runImage, error) {
	ref := o.Image
	var p llb.Platform
	if o.Platform != "" {
		var err error
		if p, err = llb.ParsePlatform(o.Platform); err != nil {
			return nil, fmt.Errorf("--platform: %w", err)
		}
	}
	switch {
	case strings.HasPrefix(ref, "oci-archive:"):
		// The archive's blobs go into the blob store (verified), then the
		// layout is read as a directory of them.
		dir, err := root.TempDir("oci-archive-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if err := ingestLayoutTar(ctx, strings.TrimPrefix(ref, "oci-archive:"), blobs, dir); err != nil {
			return nil, fmt.Errorf("reading %s: %w", ref, err)
		}
		img, err := layoutImage(ctx, dir, p, blobs)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", ref, err)
		}
		return img, nil
	case strings.HasPrefix(ref, "oci:"):
		img, err := layoutImage(ctx, strings.TrimPrefix(ref, "oci:"), p, blobs)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", ref, err)
		}
		return img, nil
	default:
		return loadStoredOrPulled(ctx, o, root, blobs, p)
	}
}

// loadStoredOrPulled finds o.Image as docker run does: a name, ID or
// digest of the local image store first (unless --pull=always), then the
// registry (unless --pull=never), through the store's Source so that the
// pulled layers land in the blob store for the next run.
func loadStoredOrPulled(ctx context.Context, o Options, root *state.Root, blobs *cache.BlobStore, p llb.Platform) (*runImage, error) {
	ref := o.Image
	images, err := root.Images()
	if err != nil {
		return nil, err
	}
	if o.Pull != "always" {
		im, err := images.Get(ref)
		if err == nil {
			im, err = imagestore.Select(im, p)
		}
		if err == nil {
			img, err := images.Load(im)
			if err != nil {
				return nil, fmt.Errorf("local image %s: %w", ref, err)
			}
			have := llb.Platform{OS: img.Config.OS, Architecture: img.Config.Architecture, Variant: img.Config.Variant, OSVersion: img.Config.OSVersion}
			if !p.IsZero() && p.Match(have) == 0 {
				return nil, fmt.Errorf("image with reference %s was found but does not match the specified platform: wanted %s, actual: %s", ref, p, have.Normalize())
			}
			return &runImage{config: &img.Config, layers: img.Layers, id: im.ID}, nil
		}
		if !errors.Is(err, imagestore.ErrNotFound) {
			return nil, fmt.Errorf("local image %s: %w", ref, err)
		}
		if o.Pull == "never" {
			return nil, fmt.Errorf("no such image: %s (--pull=never)", ref)
		}
	}
	regOpts := o.registryOptions(root, blobs)
	regOpts.Pull = o.Pull == "always"
	src := &imagestore.Source{Store: images, Remote: registry.New(regOpts), AlwaysPull: o.Pull == "always"}
	// As docker run: first that the image is not here, then what the
	// registry said.
	notLocal := func(err error) error {
		if o.Pull == "always" {
			return err
		}
		return fmt.Errorf("unable to find image %q in the local image store (builder images), and pulling it failed: %w", ref, err)
	}
	res, err := src.Resolve(ctx, ref, p)
	if err != nil {
		return nil, notLocal(err)
	}
	layers, err := src.Pull(ctx, res)
	if err != nil {
		return nil, notLocal(err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(res.Config))
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", ref, err)
	}
	return &runImage{config: cfg, layers: layers, id: digest.FromBytes(res.Config)}, nil
}

var blobName = regexp.MustCompile(`^blobs/sha256/[a-f0-9]{64}$`)

// ingestLayoutTar stores every blob of an OCI layout tar in blobs (each
// verified against the digest its name says) and makes dir a layout of
// them: its index.json (bounded) and hard links to the stored blobs. Other
// entries are ignored, so no name in the archive ever becomes a path on
// the host.
func ingestLayoutTar(ctx context.Context, file string, blobs *cache.BlobStore, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o700); err != nil {
		return err
	}
	tr := tar.NewReader(f)
	var index []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		switch {
		case name == "index.json":
			if h.Size > maxIndexSize {
				return fmt.Errorf("index.json: %d bytes, larger than %d", h.Size, maxIndexSize)
			}
			if index, err = io.ReadAll(tr); err != nil {
				return err
			}
		case blobName.MatchString(name):
			d := digest.NewDigestFromEncoded(digest.SHA256, path.Base(name))
			if _, err := blobs.Stat(d); err != nil {
				if _, _, err := blobs.Put(ctx, tr, d, h.Size); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
			// A hard link: the temp dir is in the root, as the blob store.
			if err := os.Link(blobs.Path(d), filepath.Join(dir, "blobs", "sha256", d.Encoded())); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
		}
	}
	if index == nil {
		return errors.New("no index.json: not an OCI image layout")
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "index.json"), index, 0o600)
}

// layoutImage is the image of the OCI layout dir for p, read as build
// reads oci-layout:// contexts, with its layers in blobs.
func layoutImage(ctx context.Context, dir string, p llb.Platform, blobs *cache.BlobStore) (*runImage, error) {
	r, layers, err := build.LayoutImage(ctx, dir, p, blobs)
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(r.Config))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &runImage{config: cfg, layers: layers, id: digest.FromBytes(r.Config)}, nil
}
