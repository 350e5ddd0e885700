package dockerfile

import (
	"reflect"
	"testing"

	"github.com/builderdev/builder/llb"
)

func boolPtr(b bool) *bool { return &b }

func TestParseGitRef(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		isGit   bool
		want    *gitRef
		wantErr bool
	}{
		{in: "https://github.com/moby/buildkit.git", isGit: true, want: &gitRef{Remote: "https://github.com/moby/buildkit.git"}},
		{in: "https://host/r.git#main", isGit: true, want: &gitRef{Remote: "https://host/r.git", Ref: "main"}},
		{in: "https://host/r.git#v1.0:sub/dir", isGit: true, want: &gitRef{Remote: "https://host/r.git", Ref: "v1.0", SubDir: "sub/dir"}},
		{in: "https://host/r.git#:/../sub/", isGit: true, want: &gitRef{Remote: "https://host/r.git", SubDir: "sub"}},
		{in: "http://127.0.0.1:8080/r.git?branch=dev&subdir=a", isGit: true, want: &gitRef{Remote: "http://127.0.0.1:8080/r.git", Ref: "refs/heads/dev", SubDir: "a"}},
		{in: "https://host/r.git?tag=v1&keep-git-dir=1&checksum=abc", isGit: true, want: &gitRef{Remote: "https://host/r.git", Ref: "refs/tags/v1", Checksum: "abc", KeepGitDir: boolPtr(true)}},
		{in: "https://host/r.git?submodules=false", isGit: true, want: &gitRef{Remote: "https://host/r.git", Submodules: boolPtr(false)}},
		{in: "git://host/r#dev", isGit: true, want: &gitRef{Remote: "git://host/r", Ref: "dev"}},
		{in: "ssh://git@host/r.git#dev:x", isGit: true, want: &gitRef{Remote: "ssh://git@host/r.git", Ref: "dev", SubDir: "x"}},
		{in: "git@github.com:moby/buildkit.git#v0.1:docs", isGit: true, want: &gitRef{Remote: "git@github.com:moby/buildkit.git", Ref: "v0.1", SubDir: "docs"}},
		{in: "git@host:r.git?ref=main", isGit: true, want: &gitRef{Remote: "git@host:r.git", Ref: "main"}},
		{in: "https://host/r.git?ref=a#b", isGit: true, wantErr: true},
		{in: "https://host/r.git?tag=a&branch=b", isGit: true, wantErr: true},
		{in: "https://host/r.git?keep-git-dir=maybe", isGit: true, wantErr: true},
		{in: "https://host/file.tar.gz", isGit: false},
		{in: "https://host/r.git.tar", isGit: false},
		{in: "ftp://host/r.git", isGit: false},
		{in: "github.com/moby/buildkit", isGit: false},
		{in: "./r.git", isGit: false},
		{in: "src/app.go", isGit: false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, isGit, err := parseGitRef(tt.in)
			if isGit != tt.isGit {
				t.Fatalf("isGit = %v, want %v", isGit, tt.isGit)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// copyAndSource returns res.State's only copy and the vertex it reads.
func copyAndSource(t *testing.T, res *Result) (*llb.Copy, *llb.Vertex) {
	t.Helper()
	fo, ok := res.State.Op().(llb.FileOp)
	if !ok || len(fo.Actions) != 1 || fo.Actions[0].Copy == nil {
		t.Fatalf("state is %T %+v, want a file op with one copy", res.State.Op(), res.State.Op())
	}
	cp := fo.Actions[0].Copy
	return cp, res.State.Inputs()[cp.Src]
}

func TestAddRemote(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		df       string
		wantOp   llb.Op
		wantCopy llb.Copy
		history  string
	}{
		{
			name:     "http file",
			df:       "FROM busybox\nWORKDIR /app\nADD https://example.com/dl/tool.tar.gz?x=1 ./\n",
			wantOp:   llb.HTTPOp{URL: "https://example.com/dl/tool.tar.gz?x=1", Filename: "tool.tar.gz"},
			wantCopy: llb.Copy{SrcPaths: []string{"/tool.tar.gz"}, Dest: "/app/", CreateDestPath: true},
			history:  "ADD https://example.com/dl/tool.tar.gz?x=1 ./ # buildkit",
		},
		{
			name:     "http unnamed with checksum chown chmod unpack",
			df:       "FROM busybox\nADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d --chown=1:2 --chmod=640 --unpack=true https://example.com/ /x\n",
			wantOp:   llb.HTTPOp{URL: "https://example.com/", Filename: "__unnamed__", Checksum: "sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d"},
			wantCopy: llb.Copy{SrcPaths: []string{"/__unnamed__"}, Dest: "/x", CreateDestPath: true, AttemptUnpack: true, Chmod: "640", Chown: &llb.Chown{User: "1", Group: "2"}},
			history:  "ADD --chown=1:2 --chmod=640 https://example.com/ /x # buildkit",
		},
		{
			name:     "git with ref and subdir",
			df:       "FROM busybox\nADD https://example.com/r.git#v1:docs /docs\n",
			wantOp:   llb.GitOp{Remote: "https://example.com/r.git", Ref: "v1", Subdir: "docs"},
			wantCopy: llb.Copy{SrcPaths: []string{"/"}, Dest: "/docs", DirContentsOnly: true, CreateDestPath: true},
			history:  "ADD https://example.com/r.git#v1:docs /docs # buildkit",
		},
		{
			name:     "git keep-git-dir and checksum flags",
			df:       "FROM busybox\nADD --keep-git-dir --checksum=0123abc git@example.com:r.git /src\n",
			wantOp:   llb.GitOp{Remote: "git@example.com:r.git", KeepGitDir: true, Checksum: "0123abc"},
			wantCopy: llb.Copy{SrcPaths: []string{"/"}, Dest: "/src", DirContentsOnly: true, CreateDestPath: true},
			history:  "ADD git@example.com:r.git /src # buildkit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := mustConvert(t, tt.df, nil)
			checkInvariant(t, res)
			cp, src := copyAndSource(t, res)
			if !reflect.DeepEqual(src.Op(), tt.wantOp) {
				t.Errorf("source op %+v, want %+v", src.Op(), tt.wantOp)
			}
			if len(src.Inputs()) != 0 {
				t.Errorf("source has %d inputs", len(src.Inputs()))
			}
			want := tt.wantCopy
			want.Src = cp.Src
			if !reflect.DeepEqual(*cp, want) {
				t.Errorf("copy %+v, want %+v", *cp, want)
			}
			h := res.Config.History
			if got := h[len(h)-1].CreatedBy; got != tt.history {
				t.Errorf("history %q, want %q", got, tt.history)
			}
			if src.Name() != res.State.Name() {
				t.Errorf("source name %q, want the step's name %q", src.Name(), res.State.Name())
			}
		})
	}
}
