package remotecache

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/solver/ops"
	digest "github.com/opencontainers/go-digest"
)

func TestParseExport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Export
		wantErr string
	}{
		{in: "type=registry,ref=r/app:cache", want: Export{Type: "registry", Ref: "r/app:cache", Mode: "min", Compression: "gzip", OCIMediaTypes: true}},
		{in: "r/app:cache", want: Export{Type: "registry", Ref: "r/app:cache", Mode: "min", Compression: "gzip", OCIMediaTypes: true}},
		{in: "type=registry,ref=r/a:c,mode=max,compression=zstd,compression-level=3,image-manifest=true,ignore-error=true,cache-mounts=true",
			want: Export{Type: "registry", Ref: "r/a:c", Mode: "max", Compression: "zstd", Level: 3, ImageManifest: true, OCIMediaTypes: true, IgnoreError: true, CacheMounts: true}},
		{in: "type=local,dest=/tmp/c", want: Export{Type: "local", Dest: "/tmp/c", Tag: "latest", Mode: "min", Compression: "gzip", OCIMediaTypes: true}},
		{in: "type=inline", want: Export{Type: "inline", Mode: "min", Compression: "gzip", OCIMediaTypes: true}},
		{in: "type=registry", wantErr: "needs ref=REF"},
		{in: "type=local", wantErr: "needs dest=DIR"},
		{in: "type=gha", wantErr: `cache type "gha" is not supported`},
		{in: "type=registry,ref=a,mode=all", wantErr: `mode "all"`},
		{in: "type=registry,ref=a,compression=lz4", wantErr: `compression "lz4"`},
		{in: "type=registry,ref=a,bogus=1", wantErr: `unknown attribute "bogus"`},
		{in: "type=registry,ref=a,cache-mounts=true", wantErr: "needs mode=max"},
		{in: "type=registry,ref=a,compression=zstd,oci-mediatypes=false", wantErr: "needs oci-mediatypes=true"},
		{in: "type=registry,ref=a,image-manifest=maybe", wantErr: "not a boolean"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseExport(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseImport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Import
		wantErr string
	}{
		{in: "r/app:cache", want: Import{Type: "registry", Ref: "r/app:cache"}},
		{in: "type=registry,ref=r/app:cache", want: Import{Type: "registry", Ref: "r/app:cache"}},
		{in: "type=local,src=/c", want: Import{Type: "local", Src: "/c", Tag: "latest"}},
		{in: "type=local,src=/c,tag=main", want: Import{Type: "local", Src: "/c", Tag: "main"}},
		{in: "type=local", wantErr: "needs src=DIR"},
		{in: "type=registry,ref=a,mode=max", wantErr: `unknown attribute "mode"`},
	}
	for _, tc := range tests {
		got, err := ParseImport(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func layer(s string) *cache.Layer {
	return &cache.Layer{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: digest.FromString(s), Size: int64(len(s)), DiffID: digest.FromString("diff " + s)}
}

// TestConfigDeterministic: the same records give the same bytes whatever
// the order they were added in, and survive a round trip.
func TestConfigDeterministic(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	chains := map[digest.Digest][]ops.ChainLink{
		digest.FromString("k1"): {{Layer: layer("base"), Base: true}, {Layer: layer("a"), Created: t0}},
		digest.FromString("k2"): {{Layer: layer("base"), Base: true}, {Layer: layer("a"), Created: t0}, {Layer: layer("b"), Created: t0.Add(time.Second)}},
		digest.FromString("k3"): {{Layer: layer("base"), Base: true}},
	}
	var outs [][]byte
	for _, order := range [][]string{{"k1", "k2", "k3"}, {"k3", "k1", "k2"}} {
		b := newBuilder()
		for _, k := range order {
			b.add(digest.FromString(k), chains[digest.FromString(k)], &cache.KeyInfo{Key: digest.FromString(k), Name: k})
		}
		cfg, layers := b.config()
		if len(layers) != 3 {
			t.Fatalf("%d layers, want 3", len(layers))
		}
		if len(cfg.Results) != 3 {
			t.Errorf("%d results, want 3 (shared prefixes stored once)", len(cfg.Results))
		}
		raw, err := EncodeConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, raw)
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Fatalf("config depends on the order of records:\n%s\n%s", outs[0], outs[1])
	}
	cfg, err := DecodeConfig(outs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cfg.Records {
		got := cfg.chain(r.Result)
		want := chains[r.Key]
		if len(got) != len(want) {
			t.Fatalf("%s: chain of %d, want %d", r.Key, len(got), len(want))
		}
		for i := range got {
			if *got[i].Layer != *want[i].Layer || got[i].Base != want[i].Base || !got[i].Created.Equal(want[i].Created) {
				t.Errorf("%s link %d: %+v, want %+v", r.Key, i, got[i], want[i])
			}
		}
	}
	for _, e := range []Export{{ImageManifest: true, OCIMediaTypes: true}, {OCIMediaTypes: true}, {ImageManifest: true}} {
		m1, _, err := manifest(e, outs[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		d, err := configDescriptor(m1)
		if err != nil || d.MediaType != ConfigMediaType {
			t.Errorf("%+v: config descriptor %v, %v", e, d, err)
		}
	}
}

func TestParseConfigRejects(t *testing.T) {
	t.Parallel()
	good := `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + digest.FromString("x").String() + `","size":1,"diffID":"` + digest.FromString("y").String() + `"}`
	key := digest.FromString("k").String()
	for name, raw := range map[string]string{
		"not json":      `{`,
		"version":       `{"version":2}`,
		"bad digest":    `{"version":1,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:zz","diffID":"sha256:zz"}]}`,
		"not a layer":   `{"version":1,"layers":[` + strings.Replace(good, "layer.v1.tar+gzip", "config.v1+json", 1) + `]}`,
		"bad key":       `{"version":1,"layers":[` + good + `],"results":[{"layer":0}],"records":[{"key":"x","result":0}]}`,
		"layer out":     `{"version":1,"layers":[` + good + `],"results":[{"layer":1}]}`,
		"result out":    `{"version":1,"layers":[` + good + `],"results":[{"layer":0}],"records":[{"key":"` + key + `","result":1}]}`,
		"negative":      `{"version":1,"layers":[` + good + `],"results":[{"layer":0}],"records":[{"key":"` + key + `","result":-1}]}`,
		"parent later":  `{"version":1,"layers":[` + good + `],"results":[{"layer":0,"parent":1},{"layer":0}]}`,
		"parent self":   `{"version":1,"layers":[` + good + `],"results":[{"layer":0,"parent":0}]}`,
		"mount out":     `{"version":1,"layers":[` + good + `],"mounts":[{"id":"m","layer":3}]}`,
		"not an object": `[]`,
	} {
		if _, err := parseConfig([]byte(raw)); err == nil {
			t.Errorf("%s: accepted %s", name, raw)
		}
	}
	if _, err := DecodeConfig([]byte("not gzip")); err == nil {
		t.Error("a config blob that is not gzip was accepted")
	}
	if _, err := configDescriptor([]byte(`{"schemaVersion":2,"manifests":[]}`)); err == nil {
		t.Error("an index without a cache config was accepted")
	}
}
