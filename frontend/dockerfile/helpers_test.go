package dockerfile

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/builderdev/builder/llb"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
)

// fakeResolver serves image configs from a map keyed by the ref as written.
type fakeResolver struct {
	mu     sync.Mutex
	images map[string]v1.ConfigFile
	calls  []string
}

func (f *fakeResolver) ResolveImageConfig(_ context.Context, ref string, p llb.Platform) (string, string, []byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, ref)
	f.mu.Unlock()
	img, ok := f.images[ref]
	if !ok {
		return "", "", nil, fmt.Errorf("%s: not found", ref)
	}
	dt, err := json.Marshal(img)
	if err != nil {
		return "", "", nil, err
	}
	full := ref
	if !strings.Contains(ref, "/") {
		full = "docker.io/library/" + ref
	}
	if !strings.Contains(full[strings.LastIndex(full, "/"):], ":") && !strings.Contains(full, "@") {
		full += ":latest"
	}
	if !strings.Contains(full, "@") {
		full += "@" + digest.FromBytes(dt).String()
	}
	return full, "", dt, nil
}

func (f *fakeResolver) resolved() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]string(nil), f.calls...)
	sort.Strings(out)
	return out
}

func hash(s string) v1.Hash {
	h, err := v1.NewHash(digest.FromString(s).String())
	if err != nil {
		panic(err)
	}
	return h
}

// newResolver has:
//   - busybox: 1 layer, PATH env, consistent history
//   - alpine:3: 2 layers, User "app", WorkingDir "/srv", history with one missing layer entry
//   - localhost:5000/base:1: no PATH, 1 layer, an ONBUILD trigger
//   - empty: no layers at all
func newResolver() *fakeResolver {
	return &fakeResolver{images: map[string]v1.ConfigFile{
		"busybox": {
			Architecture: "amd64", OS: "linux",
			RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{hash("busybox-layer")}},
			Config: v1.Config{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, Cmd: []string{"sh"}},
			History: []v1.History{
				{CreatedBy: "BusyBox 1.36 (glibc), Debian 12"},
				{CreatedBy: `CMD ["sh"]`, EmptyLayer: true},
			},
		},
		"alpine:3": {
			Architecture: "amd64", OS: "linux",
			RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{hash("alpine-1"), hash("alpine-2")}},
			Config: v1.Config{
				Env:        []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"},
				User:       "app",
				WorkingDir: "/srv",
				Labels:     map[string]string{"base": "alpine"},
			},
			History: []v1.History{{CreatedBy: "ADD alpine-minirootfs.tar.gz /"}},
		},
		"localhost:5000/base:1": {
			Architecture: "amd64", OS: "linux",
			RootFS:  v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{hash("base-1")}},
			Config:  v1.Config{OnBuild: []string{"RUN echo triggered"}},
			History: []v1.History{{CreatedBy: "COPY rootfs /"}, {CreatedBy: "bogus extra layer entry"}},
		},
		"empty": {
			Architecture: "amd64", OS: "linux",
			RootFS: v1.RootFS{Type: "layers"},
		},
	}}
}

var testPlatform = llb.Platform{OS: "linux", Architecture: "amd64"}

func convertString(t testing.TB, df string, mod func(*Options)) (*Result, *fakeResolver, error) {
	t.Helper()
	r := newResolver()
	opt := Options{Dockerfile: []byte(df), Filename: "Dockerfile", Platform: testPlatform, Resolver: r}
	if mod != nil {
		mod(&opt)
	}
	res, err := Convert(context.Background(), opt)
	return res, r, err
}

func mustConvert(t *testing.T, df string, mod func(*Options)) *Result {
	t.Helper()
	res, _, err := convertString(t, df, mod)
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	return res
}

// chain walks input 0 (the root) from v to the image or scratch.
func chain(v *llb.Vertex) []*llb.Vertex {
	var out []*llb.Vertex
	for v != nil {
		switch op := v.Op().(type) {
		case llb.ImageOp:
			return out
		case llb.ExecOp:
			out = append(out, v)
			v = v.Inputs()[op.Mounts[0].Input]
		case llb.FileOp:
			out = append(out, v)
			if op.Base < 0 {
				return out
			}
			v = v.Inputs()[op.Base]
		case llb.MergeOp:
			// COPY --link: the layers of inputs 1.. stack on input 0.
			for i := len(v.Inputs()) - 1; i >= 1; i-- {
				out = append(out, chain(v.Inputs()[i])...)
			}
			v = v.Inputs()[0]
		default:
			return out
		}
	}
	return out
}

// base returns the ImageOp at the bottom of the root chain, or nil.
func baseImage(v *llb.Vertex) *llb.ImageOp {
	// Follow the root (input 0 of a merge) down to the image or scratch.
	for v != nil {
		switch op := v.Op().(type) {
		case llb.ImageOp:
			return &op
		case llb.ExecOp:
			v = v.Inputs()[op.Mounts[0].Input]
		case llb.FileOp:
			if op.Base < 0 {
				return nil
			}
			v = v.Inputs()[op.Base]
		case llb.MergeOp:
			v = v.Inputs()[0]
		default:
			return nil
		}
	}
	return nil
}

// dump is a readable, stable description of a result: every vertex (inputs
// first) with its op as JSON, then the config.
func dump(res *Result) string {
	var b strings.Builder
	index := map[digest.Digest]int{}
	n := 0
	_ = llb.Walk(res.State, func(v *llb.Vertex) error {
		index[v.Digest()] = n
		m := v.Meta()
		fmt.Fprintf(&b, "v%d %s %q\n", n, v.Op().Kind(), m.Name)
		if m.Location.File != "" {
			fmt.Fprintf(&b, "  at %s:%d", m.Location.File, m.Location.Line)
			if m.Location.EndLine != 0 {
				fmt.Fprintf(&b, "-%d", m.Location.EndLine)
			}
			b.WriteString("\n")
		}
		if m.IgnoreCache {
			b.WriteString("  ignore-cache\n")
		}
		if cb := m.Description[createdByKey]; cb != "" {
			fmt.Fprintf(&b, "  created_by %q\n", cb)
		}
		var ins []string
		for _, in := range v.Inputs() {
			if in == nil {
				ins = append(ins, "scratch")
			} else {
				ins = append(ins, fmt.Sprintf("v%d", index[in.Digest()]))
			}
		}
		if len(ins) > 0 {
			fmt.Fprintf(&b, "  inputs %s\n", strings.Join(ins, " "))
		}
		op, _ := json.MarshalIndent(v.Op(), "  ", "  ")
		fmt.Fprintf(&b, "  %s\n", op)
		n++
		return nil
	})
	if res.State == nil {
		b.WriteString("state scratch\n")
	} else {
		fmt.Fprintf(&b, "state v%d\n", index[res.State.Digest()])
	}
	fmt.Fprintf(&b, "target %s\n", res.Target)
	cfg, _ := json.MarshalIndent(res.Config, "", "  ")
	b.Write(cfg)
	b.WriteString("\n")
	return b.String()
}
