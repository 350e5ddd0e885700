package build

import (
	"errors"
	"fmt"
	"io"

	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/frontend/dockerfile"
	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/internal/remotecache"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/report"
	"github.com/builderdev/builder/solver"
	"github.com/builderdev/builder/solver/ops"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
)

// Request is one build.
type Request struct {
	// ContextDir is the build context directory.
	ContextDir string
	// Dockerfile is the Dockerfile's content, DockerfileName its name in
	// messages ("" = "Dockerfile"). ReadDockerfile reads both with the
	// context's ignore patterns.
	Dockerfile     []byte
	DockerfileName string
	// Excludes are the context's .dockerignore patterns, IgnoreFile the
	// file they came from as messages name it (relative to the context:
	// ".dockerignore", "sub/app.Dockerfile.dockerignore"; "" =
	// ".dockerignore").
	Excludes   []string
	IgnoreFile string
	// Target is the stage to build ("" = the last one).
	Target string
	// BuildArgs are --build-arg values; SOURCE_DATE_EPOCH among them sets
	// the image's created time.
	BuildArgs map[string]string
	// Labels are set over the Dockerfile's labels (docker build --label).
	Labels map[string]string
	// Tags name the image in the local store and in the outputs.
	Tags []string
	// NoCache runs every step again; Pull resolves every base image at its
	// registry, not from the local store.
	NoCache bool
	Pull    bool
	// NoCacheStages are stages (AS names) whose steps run again
	// (--no-cache-filter).
	NoCacheStages []string
	// Platforms are the target platforms (none = the host's). With more
	// than one the image is an index of one image per platform, as buildx
	// builds it; identical steps run once for all.
	Platforms []llb.Platform
	// Secrets are the values of RUN --mount=type=secret, by id; SSH the
	// agent sockets of RUN --mount=type=ssh, by id.
	Secrets map[string][]byte
	SSH     map[string]string
	// Contexts are the named build contexts (--build-context), by name.
	Contexts map[string]NamedContext
	// Outputs are where the image goes besides the local store.
	Outputs []Output
	// Annotations are set on the manifest of the image in the local store
	// (each Output carries its own).
	Annotations map[string]string
	// CacheExports and CacheImports are the remote caches (--cache-to,
	// --cache-from) the build writes and reads.
	CacheExports []remotecache.Export
	CacheImports []remotecache.Import
	// Sandbox shapes every RUN.
	Sandbox Sandbox
	// CheckOnly runs the build checks of every stage and builds nothing
	// (--call check): the findings are in Result.Warnings.
	CheckOnly bool
}

// NamedContext is one --build-context: exactly one of its fields is set.
type NamedContext struct {
	// Dir is a local directory (with its own .dockerignore).
	Dir string
	// Image is an image reference (docker-image://REF).
	Image string
	// Layout is an OCI image layout: "PATH[:TAG][@sha256:...]"
	// (oci-layout://...).
	Layout string
	// HTTP is an http(s):// URL: a stage from it holds the downloaded
	// file as /context; SOURCE_DATE_EPOCH=<name> takes its time.
	HTTP string
}

// OutputType is the kind of an Output, as buildx names them.
type OutputType string

// The output types.
const (
	// OCI writes an OCI image layout: a tar at Dest, or a directory with
	// OCIDir.
	OCI OutputType = "oci"
	// Docker writes a docker archive (docker load) at Dest.
	Docker OutputType = "docker"
	// Image stores the image under Names in the local store, and pushes it
	// to them with Push.
	Image OutputType = "image"
	// Local writes the image's root filesystem into the directory Dest.
	Local OutputType = "local"
	// Tar writes the image's root filesystem as a tar at Dest.
	Tar OutputType = "tar"
)

// Output is one destination of the image.
type Output struct {
	Type OutputType
	// Dest is the file or directory written; an OCI, Docker or Tar output
	// with a Writer streams there instead (docker build -o -).
	Dest   string
	Writer io.Writer
	// Names are the output's names besides the request's Tags (image:
	// only these are stored and pushed as extra names).
	Names []string
	// Push pushes an Image output to its names and the tags.
	Push bool
	// OCIDir writes an OCI output as a directory instead of a tar.
	OCIDir bool
	// Layers is how the layers are compressed (and their times rewritten).
	Layers ops.LayerOptions
	// DockerMediaTypes writes Docker media types instead of OCI ones.
	DockerMediaTypes bool
	// Annotations are set on the image manifest (OCI media types only).
	Annotations map[string]string
}

// validate checks the output's type and destination.
func (o Output) validate() error {
	switch o.Type {
	case OCI, Docker, Tar:
		if o.Dest == "" && o.Writer == nil {
			return fmt.Errorf("type=%s needs a destination", o.Type)
		}
	case Local:
		if o.Dest == "" {
			return fmt.Errorf("type=%s needs a destination", o.Type)
		}
	case Image:
		if o.Dest != "" {
			return errors.New("type=image takes no destination (it stores the image; name it)")
		}
	default:
		return fmt.Errorf("output type %q is not supported (supported: oci, docker, image, local, tar)", o.Type)
	}
	if o.Push && o.Type != Image {
		return fmt.Errorf("type=%s cannot push", o.Type)
	}
	// What would fail the export is told before the build.
	if o.Dest != "" && o.Writer == nil {
		check := fsutil.CheckOutputFile
		if o.Type == Local || o.Type == OCI && o.OCIDir {
			check = fsutil.CheckOutputDir
		}
		if err := check(o.Dest); err != nil {
			return err
		}
	}
	if len(o.Annotations) > 0 && o.DockerMediaTypes && o.Type != Local && o.Type != Tar {
		return fmt.Errorf("type=%s uses Docker media types, whose manifests have no annotations (set oci-mediatypes=true)", o.Type)
	}
	return o.Layers.Validate()
}

// Sandbox shapes every RUN of a build.
type Sandbox struct {
	// Hostname is the hostname of every RUN ("" = executor.DefaultHostname).
	Hostname string
	// Limits are the cgroup limits of every RUN.
	Limits executor.Limits
	// CgroupParent is the parent of every RUN's cgroup, relative to the
	// builder's own cgroup.
	CgroupParent string
	// AllowInsecure grants security.insecure (RUN --security=insecure),
	// AllowNetworkHost network.host (RUN --network=host).
	AllowInsecure    bool
	AllowNetworkHost bool
	// Network is the network of a RUN that asks for none (llb.NetHost, the
	// host's, by default).
	Network llb.NetMode
	// ExtraHosts, ShmSize and Ulimits are --add-host, --shm-size and
	// --ulimit of every RUN (part of its cache key).
	ExtraHosts []llb.HostIP
	ShmSize    int64
	Ulimits    []llb.Ulimit
}

// Reporter receives a build's progress: vertex statuses and logs from the
// solver, and warnings (build checks, the Dockerfile line they are about,
// 0 for none).
type Reporter interface {
	solver.Reporter
	Warn(line int, msg string)
}

// Result is what a build produced.
type Result struct {
	// ImageID is the image's config digest (docker build --iidfile); for
	// several platforms the index's digest, as buildx reports it.
	ImageID digest.Digest
	// Descriptor is the image manifest's: the first output's that has one,
	// else the local store's.
	Descriptor v1.Descriptor
	// Names are the image's names in the local store.
	Names []string
	// Record is the build's record: every finished step with its
	// timing, cache miss and resource use, the totals, the image's layers
	// and the registry traffic (--metadata-file's builder.* keys and the
	// HTML report). A failed build returns it too, with the steps that ran.
	Record *report.Build
	// Warnings are the build-check findings.
	Warnings []dockerfile.Warning
}
