package llb

import "os"

// Kind names an op type. It is part of the digest.
type Kind string

// The op kinds.
const (
	KindImage Kind = "image"
	KindLocal Kind = "local"
	KindExec  Kind = "exec"
	KindFile  Kind = "file"
)

// Op is one operation of the graph. The concrete types are ImageOp, LocalOp,
// ExecOp and FileOp, the remote sources HTTPOp and GitOp (sources.go) and
// MergeOp (merge.go).
type Op interface {
	Kind() Kind
}

// Platform is an OCI platform.
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
	// OSVersion is the OS version ("10.0.20348.1006"): written
	// os(version)/arch, as containerd's platforms.FormatAll.
	OSVersion string `json:"os.version,omitempty"`
}

// String formats p as os[(osversion)]/arch[/variant].
func (p Platform) String() string {
	s := p.OS
	if p.OSVersion != "" {
		s += "(" + p.OSVersion + ")"
	}
	s += "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ImageOp is a registry image's root filesystem. Ref is a fully qualified
// reference; the frontend pins it by digest (name:tag@sha256:...) once it has
// resolved it, so the digest of the op changes when the tag moves.
type ImageOp struct {
	Ref      string   `json:"ref"`
	Platform Platform `json:"platform"`
}

// Kind implements Op.
func (ImageOp) Kind() Kind { return KindImage }

// LocalOp is a directory on the client: the build context or a named
// context. Its output is the directory filtered by the patterns.
type LocalOp struct {
	// Name identifies the directory among the build's local sources
	// ("context" for the main build context).
	Name string `json:"name"`
	// ExcludePatterns are .dockerignore patterns (with ! exceptions).
	ExcludePatterns []string `json:"exclude,omitempty"`
	// IncludePatterns, when set, restrict the source to these paths.
	IncludePatterns []string `json:"include,omitempty"`
}

// Kind implements Op.
func (LocalOp) Kind() Kind { return KindLocal }

// NetMode is the network of an exec.
type NetMode string

// Network modes. The empty mode is the host's network, as in docker build.
const (
	NetHost NetMode = ""
	NetNone NetMode = "none"
)

// MountType is the kind of an exec mount.
type MountType string

// Mount types.
const (
	MountBind   MountType = ""
	MountCache  MountType = "cache"
	MountTmpfs  MountType = "tmpfs"
	MountSecret MountType = "secret"
	MountSSH    MountType = "ssh"
)

// CacheSharing is the sharing mode of a cache mount.
type CacheSharing string

// Cache sharing modes.
const (
	SharingShared  CacheSharing = "shared"
	SharingPrivate CacheSharing = "private"
	SharingLocked  CacheSharing = "locked"
)

// Mount is a filesystem mounted into an exec. Mounts[0] of an ExecOp is the
// root filesystem (Dest "/"); its changes are the exec's output.
type Mount struct {
	// Input is the index into the vertex's inputs that provides the mount's
	// contents, or -1 for none (an empty dir, a cache, a tmpfs, a secret).
	Input int `json:"input"`
	// Selector is the path inside the input to mount ("" or "/" = its root).
	Selector string    `json:"selector,omitempty"`
	Dest     string    `json:"dest"`
	Readonly bool      `json:"readonly,omitempty"`
	Type     MountType `json:"type,omitempty"`

	// Cache mounts.
	CacheID      string       `json:"cacheID,omitempty"`
	CacheSharing CacheSharing `json:"sharing,omitempty"`
	// Tmpfs mounts: size in bytes, 0 for the default.
	TmpfsSize int64 `json:"tmpfsSize,omitempty"`
	// Secret and ssh mounts.
	SecretID  string `json:"secretID,omitempty"`
	SecretEnv string `json:"secretEnv,omitempty"`
	Required  bool   `json:"required,omitempty"`
	// Mode, UID and GID of the mount point or file (cache, secret, ssh).
	Mode *uint32 `json:"mode,omitempty"`
	UID  *int    `json:"uid,omitempty"`
	GID  *int    `json:"gid,omitempty"`
}

// ExecOp runs a process. Mounts[0] is the root filesystem.
type ExecOp struct {
	Args []string `json:"args"`
	// Env is the complete environment, KEY=VALUE.
	Env []string `json:"env,omitempty"`
	// Cwd is the absolute working directory; it is created when missing.
	Cwd string `json:"cwd"`
	// User is "", a name, uid, name:group or uid:gid, resolved inside the
	// root filesystem's /etc/passwd and /etc/group.
	User     string  `json:"user,omitempty"`
	Hostname string  `json:"hostname,omitempty"`
	Network  NetMode `json:"network,omitempty"`
	Mounts   []Mount `json:"mounts"`
	// Security is the sandbox mode; "" is the default sandbox (RUN
	// --security=sandbox), SecurityInsecure needs the build to allow it.
	Security SecurityMode `json:"security,omitempty"`
	// Platform is the platform the process is built for: the stage's. It
	// is part of the digest, so the same command for two platforms is two
	// cache entries; a platform the host does not run natively executes
	// under binfmt_misc emulation.
	Platform Platform `json:"platform"`
	// ProxyEnv are HTTP_PROXY-style KEY=VALUE pairs (the proxy build args
	// BuildKit passes to every RUN, see llb.WithProxy) appended to Env when
	// the process runs. They are deliberately NOT part of the digest (json
	// "-"), so that a build behind a different proxy reuses the cache; the
	// frontend keeps them out of the history too.
	ProxyEnv []string `json:"-"`
	// ExtraHosts are added to the process's /etc/hosts (--add-host),
	// ShmSize is the size of its /dev/shm in bytes (--shm-size; 0 is 64
	// MiB) and Ulimits are its resource limits (--ulimit). They are part
	// of the digest, as in BuildKit's ExecOp meta.
	ExtraHosts []HostIP `json:"extraHosts,omitempty"`
	ShmSize    int64    `json:"shmSize,omitempty"`
	Ulimits    []Ulimit `json:"ulimits,omitempty"`
}

// HostIP is one /etc/hosts entry.
type HostIP struct {
	Host string `json:"host"`
	IP   string `json:"ip"`
}

// Ulimit is one resource limit (setrlimit) by docker's name ("nofile"),
// -1 for unlimited.
type Ulimit struct {
	Name string `json:"name"`
	Soft int64  `json:"soft"`
	Hard int64  `json:"hard"`
}

// SecurityMode is the privilege mode of an exec.
type SecurityMode string

// Security modes.
const (
	SecuritySandbox  SecurityMode = ""
	SecurityInsecure SecurityMode = "insecure"
)

// Kind implements Op.
func (ExecOp) Kind() Kind { return KindExec }

// FileOp changes input 0 (or the empty tree when input 0 is -1, see
// FileOp.Base) by applying Actions in order. Actions that read another
// filesystem (Copy) name it by input index.
type FileOp struct {
	// Base is the input index of the tree to change, or -1 for scratch.
	Base    int          `json:"base"`
	Actions []FileAction `json:"actions"`
}

// Kind implements Op.
func (FileOp) Kind() Kind { return KindFile }

// FileAction is exactly one of its fields set.
type FileAction struct {
	Copy   *Copy   `json:"copy,omitempty"`
	Mkdir  *Mkdir  `json:"mkdir,omitempty"`
	Mkfile *Mkfile `json:"mkfile,omitempty"`
	Rm     *Rm     `json:"rm,omitempty"`
}

// Chown is an owner for created files. User and Group are names or numeric
// ids; names are resolved in the destination tree's /etc/passwd and
// /etc/group. An empty Group is the user's primary group (or the same id).
type Chown struct {
	User  string `json:"user"`
	Group string `json:"group,omitempty"`
}

// Copy copies paths from input Src into the tree, like Dockerfile COPY/ADD.
type Copy struct {
	// Src is the input index of the source tree.
	Src int `json:"src"`
	// SrcPaths are paths inside the source tree, relative to its root; with
	// AllowWildcard they may hold glob patterns.
	SrcPaths []string `json:"srcPaths"`
	// Dest is the absolute destination. A trailing "/" (or several sources)
	// means "into this directory".
	Dest string `json:"dest"`
	// Chown sets the owner of copied files; nil keeps 0:0 for a local source
	// and the source's owners for a tree.
	Chown *Chown `json:"chown,omitempty"`
	// Chmod is an octal ("0755") or symbolic ("u=rwX,go=rX") mode applied to
	// copied files and directories; "" keeps the source modes.
	Chmod string `json:"chmod,omitempty"`
	// FollowSymlinks follows a source path that is itself a symlink.
	FollowSymlinks bool `json:"followSymlinks,omitempty"`
	// DirContentsOnly copies a source directory's contents, not the dir.
	DirContentsOnly bool `json:"dirContentsOnly,omitempty"`
	AllowWildcard   bool `json:"allowWildcard,omitempty"`
	// AllowEmptyWildcard lets a pattern match nothing.
	AllowEmptyWildcard bool `json:"allowEmptyWildcard,omitempty"`
	// CreateDestPath creates missing parents of Dest.
	CreateDestPath bool `json:"createDestPath,omitempty"`
	// AttemptUnpack extracts local tar archives (ADD).
	AttemptUnpack bool `json:"attemptUnpack,omitempty"`
	// ExcludePatterns drop matching source paths (COPY --exclude).
	ExcludePatterns []string `json:"exclude,omitempty"`
	// Parents keeps the source's parent directories (COPY --parents).
	Parents bool `json:"parents,omitempty"`
	// SrcName names the source tree in errors, in the user's words
	// (`stage "a"`, "image alpine"); not part of the digest.
	SrcName string `json:"-"`
}

// Mkdir creates a directory.
type Mkdir struct {
	Path        string      `json:"path"`
	Mode        os.FileMode `json:"mode"`
	MakeParents bool        `json:"makeParents,omitempty"`
	Chown       *Chown      `json:"chown,omitempty"`
	// Timestamp (Unix seconds), when set, is the mtime and atime of the
	// directories the action creates (WORKDIR under SOURCE_DATE_EPOCH).
	Timestamp *int64 `json:"timestamp,omitempty"`
}

// Mkfile creates or replaces a file.
type Mkfile struct {
	Path  string      `json:"path"`
	Mode  os.FileMode `json:"mode"`
	Data  []byte      `json:"data"`
	Chown *Chown      `json:"chown,omitempty"`
}

// Rm removes a path.
type Rm struct {
	Path          string `json:"path"`
	AllowNotFound bool   `json:"allowNotFound,omitempty"`
	AllowWildcard bool   `json:"allowWildcard,omitempty"`
}
