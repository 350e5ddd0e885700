package main

import (
	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/remotecache"
	"github.com/builderdev/builder/registry"
	"github.com/builderdev/builder/state"
	"github.com/spf13/pflag"
)

// cacheFlags are --cache-to and --cache-from (buildx syntax).
type cacheFlags struct {
	to, from []string
}

func (f *cacheFlags) add(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.to, "cache-to", nil, `Cache export destinations (e.g., "type=registry,ref=reg/app:cache,mode=max", "type=local,dest=dir", "type=inline")`)
	fs.StringArrayVar(&f.from, "cache-from", nil, `External cache sources (e.g., "type=registry,ref=reg/app:cache", "type=local,src=dir", or an image built with --cache-to type=inline)`)
}

// parse checks the values before anything is built.
func (f cacheFlags) parse() ([]remotecache.Export, []remotecache.Import, error) {
	return remotecache.ParseAll(f.to, f.from)
}

// lazyBlobs lets the blob store fetch the layers an image got from a remote
// cache without downloading them (a build that pushed them by mount) when
// a command reads them: from the repository the registry client's state
// under root records for each (reg, or a client with default settings).
func lazyBlobs(root *state.Root, blobs *cache.BlobStore, reg *registry.Client) {
	if reg == nil {
		reg = registry.New(RegistryFlags{}.options(root, blobs))
	}
	blobs.SetFetcher(reg)
}
