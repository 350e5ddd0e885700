package dockerfile

import (
	"fmt"
	"strings"
	"testing"

	"github.com/builderdev/builder/llb"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestBuildKitChecksIgnoreAndErrors ports the checkLinterWarnings calls of
// BuildKit's dockerfile_check_test.go that TestBuildKitChecks leaves out
// (they need a .dockerignore, a build error or a pushed image):
// testCopyIgnoredFiles, testCopyIgnoredFileContextRoot,
// testWarningsBeforeError and testBaseImagePlatformMismatch. The build
// errors of testCopyIgnoredFiles ("/Dockerfile": not found) come from the
// solver: golden case error-missing-source covers that message. (The
// second call of testCopyIgnoredFiles repeats the first.)
func TestBuildKitChecksIgnoreAndErrors(t *testing.T) {
	t.Parallel()
	const copyIgnored = "\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n"
	bothWarnings := []string{
		`CopyIgnoredFile:3 Attempting to Copy file "Dockerfile" that is excluded by .dockerignore`,
		`CopyIgnoredFile:4 Attempting to Add file "Dockerfile" that is excluded by .dockerignore`,
	}
	armImage := "registry.test/buildkit/testbaseimageplatform:latest"
	tests := []struct {
		name    string
		df      string
		ignore  []string
		plat    *llb.Platform
		want    []string
		wantErr string
	}{
		{"testCopyIgnoredFiles#1", copyIgnored, []string{"Dockerfile"}, nil, bothWarnings, ""},
		{"testCopyIgnoredFiles#3 check=skip", "# check=skip=CopyIgnoredFile" + copyIgnored, []string{"Dockerfile"}, nil, nil, ""},
		{"testCopyIgnoredFiles#4 ignored in a stage, copied from it", "\nFROM scratch AS base\nCOPY Dockerfile /foobar\nADD Dockerfile /windy\nFROM base\nCOPY --from=base /foobar /Dockerfile\n", []string{"foobar"}, nil, nil, ""},
		{"testCopyIgnoredFiles#5 re-included", "\nFROM scratch\nCOPY ./Dockerfile .\n", []string{"**", "!Dockerfile"}, nil, nil, ""},
		{"testCopyIgnoredFiles#6 directory", "\nFROM scratch\nCOPY . .\n\t", []string{"**", "!Dockerfile"}, nil, nil, ""},
		{"testCopyIgnoredFileContextRoot dotfiles", "\nFROM scratch\nCOPY . .\n", []string{".*"}, nil, nil, ""},
		{"testCopyIgnoredFileContextRoot wildcard", "\nFROM scratch\nCOPY . .\n", []string{"*"}, nil, []string{
			`CopyIgnoredFile:3 Attempting to Copy file "." that is excluded by .dockerignore`,
		}, ""},
		{"testWarningsBeforeError", "\nFROM scratch AS BadStageName\nMAINTAINER me@example.org\nBADCMD\n", nil, nil, []string{
			`StageNameCasing:2 Stage name 'BadStageName' should be lowercase`,
			`MaintainerDeprecated:3 Maintainer instruction is deprecated in favor of using label`,
		}, "unknown instruction: BADCMD"},
		{"testBaseImagePlatformMismatch", "\nFROM " + armImage + "\nENV foo=bar\n\t", nil, &llb.Platform{OS: "linux", Architecture: "amd64"}, []string{
			`InvalidBaseImagePlatform:2 Base image ` + armImage + ` was pulled with platform "linux/arm64", expected "linux/amd64" for current build`,
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			_, _, err := convertString(t, tt.df, func(o *Options) {
				// Warnings are streamed as found, also when the
				// conversion fails afterwards (as the CLI prints them).
				o.Warn = func(w Warning) {
					got = append(got, fmt.Sprintf("%s:%d %s", w.Rule, w.Location.Line, w.Message))
				}
				o.ExcludePatterns = tt.ignore
				if tt.plat != nil {
					o.Platform = *tt.plat
				}
				r := newResolver()
				r.images[armImage] = v1.ConfigFile{OS: "linux", Architecture: "arm64",
					RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{hash("arm64-layer")}}}
				o.Resolver = r
			})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Convert: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Convert error %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
