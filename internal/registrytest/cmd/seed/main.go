package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/builderdev/builder/internal/registrytest"
)

func main() {
	reg := flag.String("registry", "127.0.0.1:5000", "registry host:port to wait for")
	ref := flag.String("ref", "", "reference to push to (default REGISTRY/busybox:latest)")
	wait := flag.Duration("wait", 30*time.Second, "how long to wait for the registry to answer /v2/")
	multi := flag.Bool("multiarch", false, "push the linux/amd64 + linux/arm64 index (registrytest.BusyboxIndex) instead")
	flag.Parse()
	if *ref == "" {
		*ref = *reg + "/busybox:latest"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *reg, *ref, *wait, *multi); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, reg, ref string, wait time.Duration, multi bool) error {
	if err := waitFor(ctx, reg, wait); err != nil {
		return err
	}
	if multi {
		idx, err := registrytest.BusyboxIndex()
		if err != nil {
			return err
		}
		pinned, err := registrytest.WriteIndex(ctx, idx, ref)
		if err != nil {
			return err
		}
		fmt.Println(pinned)
		return nil
	}
	img, err := registrytest.BusyboxImage()
	if err != nil {
		return err
	}
	pinned, err := registrytest.Write(ctx, img, ref)
	if err != nil {
		return err
	}
	fmt.Println(pinned)
	return nil
}

// waitFor polls the registry's /v2/ endpoint (any answer, also 401, means
// it is up).
func waitFor(ctx context.Context, reg string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	r, err := registrytest.ParseRef(reg + "/probe")
	if err != nil {
		return err
	}
	url := r.Context().Scheme() + "://" + reg + "/v2/"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("registry %s not answering: %w", reg, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
