package llb

// Remote source kinds. Like ImageOp and LocalOp they have no inputs; their
// output is a tree that a FileOp copies from (ADD <url> <dest>).
const (
	KindHTTP Kind = "http"
	KindGit  Kind = "git"
)

// HTTPOp is a file downloaded over HTTP(S). Its output is a tree holding
// exactly one file, /Filename, with mode Perm (0600 when 0) owned by
// UID:GID, its mtime the response's Last-Modified time (the Unix epoch when
// the server sends none), as BuildKit's HTTP source does.
//
// The digest covers every field; the cache key of a build also covers the
// downloaded content: Checksum when it is set, otherwise the content digest
// learnt from the server (revalidated with the stored ETag, or by
// downloading).
type HTTPOp struct {
	URL string `json:"url"`
	// Checksum, when set ("sha256:..."), pins the content: a download
	// with another digest fails.
	Checksum string `json:"checksum,omitempty"`
	// Filename is the name of the file in the output tree: a single path
	// element. Empty is "__unnamed__".
	Filename string `json:"filename,omitempty"`
	// Perm is the file's permission bits; 0 is 0600.
	Perm int `json:"perm,omitempty"`
	UID  int `json:"uid,omitempty"`
	GID  int `json:"gid,omitempty"`
}

// Kind implements Op.
func (HTTPOp) Kind() Kind { return KindHTTP }

// GitOp is a checkout of a git repository. Its output is the work tree of
// Ref (or of Subdir inside it) with the file modes git records and owners
// 0:0; .git is removed unless KeepGitDir is set.
//
// The cache key of a build is the commit that Ref resolves to on the
// remote (git ls-remote), so a new commit on a branch is a miss and an
// unchanged ref is a hit.
type GitOp struct {
	// Remote is the repository URL as the git CLI takes it (https://,
	// http://, git://, ssh:// or user@host:path), without the #fragment.
	Remote string `json:"remote"`
	// Ref is a branch, a tag, a full ref name or a commit SHA; "" is the
	// remote's HEAD.
	Ref string `json:"ref,omitempty"`
	// Subdir is a directory inside the repository whose contents are the
	// output ("" = the whole work tree).
	Subdir string `json:"subdir,omitempty"`
	// KeepGitDir keeps the .git directory in the output.
	KeepGitDir bool `json:"keepGitDir,omitempty"`
	// Checksum, when set, is the commit SHA (or a prefix) that Ref must
	// resolve to.
	Checksum string `json:"checksum,omitempty"`
	// SkipSubmodules leaves submodules out; by default they are checked out
	// recursively.
	SkipSubmodules bool `json:"skipSubmodules,omitempty"`
}

// Kind implements Op.
func (GitOp) Kind() Kind { return KindGit }
