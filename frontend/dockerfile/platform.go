package dockerfile

import "github.com/builderdev/builder/llb"

// defaultPathEnv is the PATH BuildKit gives images that have none.
const defaultPathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// hostPlatform is the platform of this process, the build platform.
func hostPlatform() llb.Platform { return llb.HostPlatform() }

// normalizePlatform is llb.Platform.Normalize, containerd's normalization.
func normalizePlatform(p llb.Platform) llb.Platform { return p.Normalize() }

// parsePlatform is llb.ParsePlatform, containerd's platforms.Parse.
func parsePlatform(s string) (llb.Platform, error) { return llb.ParsePlatform(s) }
