package dockerfile

import (
	"fmt"
	"strings"
	"testing"

	"github.com/builderdev/builder/llb"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func lintWarnings(res *Result, rule string) []string {
	var got []string
	for _, w := range res.Warnings {
		if w.Rule == rule {
			got = append(got, fmt.Sprintf("%s:%d %s", w.Rule, w.Location.Line, w.Message))
		}
	}
	return got
}

func TestLintCopyIgnoredFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ignore []string
		df     string
		want   []string
	}{
		{"ignored file", []string{"secret.txt"}, "FROM busybox\nCOPY secret.txt app.go /app/\n", []string{
			`CopyIgnoredFile:2 Attempting to Copy file "secret.txt" that is excluded by .dockerignore`,
		}},
		{"ADD and a parent dir", []string{"build"}, "FROM busybox\nADD build/out/bin /bin/\n", []string{
			`CopyIgnoredFile:2 Attempting to Add file "build/out/bin" that is excluded by .dockerignore`,
		}},
		{"double star and cleaned path", []string{"**/*.log"}, "FROM busybox\nCOPY ./logs/a.log /\n", []string{
			`CopyIgnoredFile:2 Attempting to Copy file "logs/a.log" that is excluded by .dockerignore`,
		}},
		{"star stays in one dir", []string{"*.log"}, "FROM busybox\nCOPY logs/a.log /\n", nil},
		{"exceptions disable the check", []string{"*.txt", "!keep.txt"}, "FROM busybox\nCOPY secret.txt /\n", nil},
		{"context root is not a file", []string{"node_modules"}, "FROM busybox\nCOPY . /app/\n", nil},
		{"context root all excluded", []string{"*"}, "FROM busybox\nCOPY . /app/\n", []string{
			`CopyIgnoredFile:2 Attempting to Copy file "." that is excluded by .dockerignore`,
		}},
		{"absolute source as written", []string{"secret.txt"}, "FROM busybox\nCOPY /secret.txt /\n", nil},
		{"from a stage is not the context", []string{"x"}, "FROM busybox AS b\nFROM busybox\nCOPY --from=b x /\n", nil},
		{"heredoc", []string{"x"}, "FROM busybox\nCOPY <<x /x\nhi\nx\n", nil},
		{"no dockerignore", nil, "FROM busybox\nCOPY secret.txt /\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := mustConvert(t, tt.df, func(o *Options) { o.ExcludePatterns = tt.ignore })
			got := lintWarnings(res, "CopyIgnoredFile")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLintInvalidBaseImagePlatform(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		df   string
		plat llb.Platform
		want []string
	}{
		{"matching", "FROM busybox\n", llb.Platform{OS: "linux", Architecture: "amd64"}, nil},
		{"variant does not count", "FROM busybox\n", llb.Platform{OS: "linux", Architecture: "amd64", Variant: "v2"}, nil},
		{"other arch requested", "FROM busybox\n", llb.Platform{OS: "linux", Architecture: "arm64"}, []string{
			`InvalidBaseImagePlatform:1 Base image busybox was pulled with platform "linux/amd64", expected "linux/arm64" for current build`,
		}},
		{"FROM --platform, arm normalised", "FROM --platform=linux/arm alpine:3 AS a\nFROM busybox\nCOPY --from=a / /\n", llb.Platform{OS: "linux", Architecture: "amd64"}, []string{
			`InvalidBaseImagePlatform:1 Base image alpine:3 was pulled with platform "linux/amd64", expected "linux/arm/v7" for current build`,
		}},
		{"unneeded stage is not resolved", "FROM --platform=linux/arm64 alpine:3 AS a\nFROM busybox\n", llb.Platform{OS: "linux", Architecture: "amd64"}, nil},
		{"scratch", "FROM scratch\n", llb.Platform{OS: "linux", Architecture: "arm64"}, nil},
		{"image platform normalised like containerd", "FROM aarch64-image\n", llb.Platform{OS: "linux", Architecture: "amd64"}, []string{
			`InvalidBaseImagePlatform:1 Base image aarch64-image was pulled with platform "linux/arm64", expected "linux/amd64" for current build`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := mustConvert(t, tt.df, func(o *Options) {
				o.Platform = tt.plat
				r := newResolver()
				r.images["aarch64-image"] = v1.ConfigFile{OS: "linux", Architecture: "aarch64", Variant: "v8",
					RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{hash("aarch64-layer")}}}
				o.Resolver = r
			})
			got := lintWarnings(res, "InvalidBaseImagePlatform")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
