package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/cmd/builder/progressui"
	"github.com/builderdev/builder/exporter"
	"github.com/builderdev/builder/registry"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/state"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// RegistryFlags are the registry connection flags of build, push and
// login.
type RegistryFlags struct {
	// CAFiles are --tls-ca: PEM CA certificates trusted besides the
	// system's.
	CAFiles []string
	// Insecure are --insecure-registry HOST[:PORT]s spoken to over plain
	// HTTP (loopback registries always are).
	Insecure []string
	// StallTimeout is --registry-timeout: how long a registry
	// connection may make no progress (0: BUILDER_REGISTRY_TIMEOUT or
	// the default).
	StallTimeout time.Duration
}

func (f *RegistryFlags) add(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.CAFiles, "tls-ca", nil, "Trust the CA certificates in this PEM file for registries (besides the system's)")
	fs.StringArrayVar(&f.Insecure, "insecure-registry", nil, "Allow plain HTTP to this registry HOST[:PORT]")
	fs.DurationVar(&f.StallTimeout, "registry-timeout", 0, "Fail a registry request after this long without progress, retried once (default $"+registry.EnvStallTimeout+" or "+registry.DefaultTimeouts.Stall.String()+")")
}

// options returns the registry client options of the flags, keeping the
// client's state (tag records, blob sources) under root.
func (f RegistryFlags) options(root *state.Root, blobs *cache.BlobStore) registry.Options {
	o := registry.Options{Blobs: blobs, CAFiles: f.CAFiles, Insecure: f.Insecure}
	o.Timeouts.Stall = f.StallTimeout
	if root != nil {
		o.StateDir = root.RegistryDir()
	}
	return o
}

// pusherKey keys the registry client and reporter PushImage uses.
type pusherKey struct{}

type pusher struct {
	reg *registry.Client
	r   solver.Reporter
}

// withPusher makes ctx carry what PushImage needs.
func withPusher(ctx context.Context, reg *registry.Client, r solver.Reporter) context.Context {
	return context.WithValue(ctx, pusherKey{}, pusher{reg: reg, r: r})
}

func init() { PushImage = pushImage }

// pushImage is PushImage: it pushes img to names with the client and
// reporter withPusher put in ctx.
func pushImage(ctx context.Context, img *exporter.Image, names []string, opt []exporter.Option) (v1.Descriptor, error) {
	p, ok := ctx.Value(pusherKey{}).(pusher)
	if !ok {
		return v1.Descriptor{}, errors.New("push: no registry client")
	}
	vimg, err := img.V1(opt...)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return push(ctx, p.reg, p.r, vimg, names)
}

// push uploads img to every name, reporting one status per name with the
// bytes pushed in its log.
func push(ctx context.Context, reg *registry.Client, r solver.Reporter, img v1.Image, names []string) (v1.Descriptor, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	d := digest.FromBytes(raw)
	desc := v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: v1.Hash{Algorithm: "sha256", Hex: d.Encoded()}}
	for _, name := range names {
		if err := pushOne(ctx, reg, r, img, name, d); err != nil {
			return desc, err
		}
	}
	return desc, nil
}

func pushOne(ctx context.Context, reg *registry.Client, r solver.Reporter, img v1.Image, name string, d digest.Digest) error {
	st := solver.Status{Digest: digest.FromString("push " + name + time.Now().String()), Name: "pushing layers and manifest to " + name, Started: time.Now()}
	r.Status(st)
	var mu sync.Mutex
	var last time.Time
	var lastDone int64 = -1
	logf := func(format string, a ...any) {
		r.Log(solver.Log{Digest: st.Digest, Stream: 1, Data: fmt.Appendf(nil, format, a...), Timestamp: time.Now()})
	}
	_, err := reg.Push(ctx, img, []string{name}, registry.PushOptions{Progress: func(_ string, done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if done == lastDone || (done < total && time.Since(last) < 500*time.Millisecond) {
			return
		}
		last, lastDone = time.Now(), done
		logf("%s / %s\n", humanBytes(done), humanBytes(total))
	}})
	if err == nil {
		logf("pushed %s@%s\n", name, d)
	}
	st.Completed, st.Err = time.Now(), err
	r.Status(st)
	return err
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2fGB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2fMB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2fkB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

// newPushCommand is `builder push NAME[:TAG] [DEST...]`: push an image of
// the local store to its name, or to the DEST names.
func newPushCommand() *cobra.Command {
	var (
		root     string
		progress string
		flags    RegistryFlags
	)
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG] [DEST...]",
		Short: "Upload an image from the local store to a registry",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return Push(cmd.Context(), root, progress, flags, args[0], args[1:], os.Stderr, os.Stdout)
		},
	}
	f := cmd.Flags()
	rootFlag(cmd, &root)
	f.StringVar(&progress, "progress", "auto", `Set type of progress output ("auto", "plain", "tty")`)
	flags.add(f)
	return cmd
}

// Push pushes the stored image src to dests (its own name when none),
// showing progress on out and printing "DEST: digest: sha256:... size: N"
// on stdout for every destination, as docker push prints its result.
func Push(ctx context.Context, dir, progress string, flags RegistryFlags, src string, dests []string, out, stdout io.Writer) error {
	for _, d := range dests {
		if err := exporter.ValidateName(d); err != nil {
			return fmt.Errorf("push destination %q: %w", d, err)
		}
	}
	root, err := state.Open(dir, state.Options{})
	if err != nil {
		return err
	}
	defer root.Close()
	store, err := root.Cache()
	if err != nil {
		return err
	}
	images, err := root.Images()
	if err != nil {
		return err
	}
	im, err := images.Get(src)
	if err != nil {
		return fmt.Errorf("push %s: %w", src, err)
	}
	if len(dests) == 0 {
		full, err := exporter.NormalizeName(src)
		if err != nil {
			return fmt.Errorf("push %s: %w", src, err)
		}
		dests = []string{full}
	}
	eimg, err := images.Load(im)
	if err != nil {
		return fmt.Errorf("push %s: %w", src, err)
	}
	// Push the stored manifest as it is (its media types included).
	var opt []exporter.Option
	if im.Manifest.MediaType == "application/vnd.docker.distribution.manifest.v2+json" {
		opt = append(opt, exporter.WithDockerMediaTypes())
	}
	vimg, err := eimg.V1(opt...)
	if err != nil {
		return fmt.Errorf("push %s: %w", src, err)
	}
	reg := registry.New(flags.options(root, store.Blobs()))
	display, err := progressui.New(out, progress)
	if err != nil {
		return err
	}
	desc, err := push(ctx, reg, display, vimg, dests)
	display.Close()
	if err != nil {
		return err
	}
	for _, d := range dests {
		fmt.Fprintf(stdout, "%s: digest: %s size: %d\n", d, desc.Digest, desc.Size)
	}
	return nil
}
