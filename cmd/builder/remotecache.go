package main

import (
	"github.com/builderdev/builder/solver/remotecache"
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
	var exps []remotecache.Export
	var imps []remotecache.Import
	for _, s := range f.to {
		e, err := remotecache.ParseExport(s)
		if err != nil {
			return nil, nil, err
		}
		exps = append(exps, e)
	}
	for _, s := range f.from {
		i, err := remotecache.ParseImport(s)
		if err != nil {
			return nil, nil, err
		}
		imps = append(imps, i)
	}
	return exps, imps, nil
}
