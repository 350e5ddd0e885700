package dockerfile

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/builderdev/builder/llb"
)

// defaultPathEnv is the PATH BuildKit gives images that have none.
const defaultPathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// hostPlatform is the platform of this process, the build platform.
func hostPlatform() llb.Platform {
	return normalizePlatform(llb.Platform{OS: "linux", Architecture: runtime.GOARCH})
}

var archAliases = map[string]llb.Platform{
	"x86_64":  {Architecture: "amd64"},
	"x86-64":  {Architecture: "amd64"},
	"amd64":   {Architecture: "amd64"},
	"aarch64": {Architecture: "arm64"},
	"arm64":   {Architecture: "arm64"},
	"armhf":   {Architecture: "arm", Variant: "v7"},
	"armel":   {Architecture: "arm", Variant: "v6"},
	"arm":     {Architecture: "arm"},
	"i386":    {Architecture: "386"},
	"i686":    {Architecture: "386"},
	"386":     {Architecture: "386"},
}

var knownOS = map[string]bool{
	"linux": true, "windows": true, "darwin": true, "freebsd": true, "netbsd": true,
	"openbsd": true, "solaris": true, "illumos": true, "aix": true, "plan9": true,
	"android": true, "ios": true, "js": true, "wasip1": true, "dragonfly": true,
}

// normalizePlatform applies containerd's normalization: architecture
// aliases, arm64's implicit v8 and arm's default v7.
func normalizePlatform(p llb.Platform) llb.Platform {
	p.OS = strings.ToLower(p.OS)
	p.Architecture = strings.ToLower(p.Architecture)
	p.Variant = strings.ToLower(p.Variant)
	if a, ok := archAliases[p.Architecture]; ok {
		p.Architecture = a.Architecture
		if p.Variant == "" {
			p.Variant = a.Variant
		}
	}
	switch p.Architecture {
	case "arm64":
		if p.Variant == "v8" || p.Variant == "8" {
			p.Variant = ""
		}
	case "arm":
		switch p.Variant {
		case "", "7":
			p.Variant = "v7"
		case "5", "6", "8":
			p.Variant = "v" + p.Variant
		}
	case "amd64":
		if p.Variant == "v1" {
			p.Variant = ""
		}
	}
	return p
}

// parsePlatform parses os[/arch[/variant]] (or a bare architecture) like
// containerd's platforms.Parse.
func parsePlatform(s string) (llb.Platform, error) {
	parts := strings.Split(s, "/")
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, " \t\n") {
			return llb.Platform{}, fmt.Errorf("invalid platform %q", s)
		}
	}
	var p llb.Platform
	switch len(parts) {
	case 1:
		if knownOS[strings.ToLower(parts[0])] {
			p = llb.Platform{OS: parts[0], Architecture: runtime.GOARCH}
		} else if _, ok := archAliases[strings.ToLower(parts[0])]; ok {
			p = llb.Platform{OS: "linux", Architecture: parts[0]}
		} else {
			return llb.Platform{}, fmt.Errorf("unknown operating system or architecture in platform %q", s)
		}
	case 2:
		p = llb.Platform{OS: parts[0], Architecture: parts[1]}
	case 3:
		p = llb.Platform{OS: parts[0], Architecture: parts[1], Variant: parts[2]}
	default:
		return llb.Platform{}, fmt.Errorf("invalid platform %q: too many components", s)
	}
	if !knownOS[strings.ToLower(p.OS)] {
		return llb.Platform{}, fmt.Errorf("unknown operating system %q in platform %q", p.OS, s)
	}
	return normalizePlatform(p), nil
}
