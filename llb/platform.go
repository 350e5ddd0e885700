package llb

import (
	"fmt"
	"runtime"
	"strings"
)

// This file is the one place that knows how platforms are spelled and
// compared (containerd's platforms.Parse, Normalize and Only, trimmed to
// what a Linux builder needs). The frontend parses FROM --platform and the
// build's --platform with it; the registry, the local image store, OCI
// layout contexts and builder run choose an index entry with Match.

// archAliases maps architecture spellings to their OCI names (and the
// variant they imply).
var archAliases = map[string]Platform{
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

// HostPlatform is the platform of this process: the build platform, the
// one RUN executes natively.
func HostPlatform() Platform {
	return Platform{OS: "linux", Architecture: runtime.GOARCH}.Normalize()
}

// Normalize applies containerd's normalization: lower case, architecture
// aliases (x86_64 is amd64, aarch64 is arm64, armhf is arm/v7), arm64's
// implicit v8 (dropped), arm's default v7 and amd64's v1 (dropped). An empty
// platform stays empty.
func (p Platform) Normalize() Platform {
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

// WithDefaults fills an empty OS (linux) and architecture (the host's) and
// normalizes: what an unspecified platform means.
func (p Platform) WithDefaults() Platform {
	if p.OS == "" {
		p.OS = "linux"
	}
	if p.Architecture == "" {
		p.Architecture = runtime.GOARCH
	}
	return p.Normalize()
}

// IsZero says whether p is unset.
func (p Platform) IsZero() bool { return p == Platform{} }

// Match says how well have (an image's or an index entry's platform)
// serves want: 0 not at all, 2 exactly (after normalization), 1 when have
// names no variant for want's OS and architecture (an index without
// variant information, or an image config without one). An empty OS or
// architecture in want matches any.
func (want Platform) Match(have Platform) int {
	w, h := want.Normalize(), have.Normalize()
	if (w.OS != "" && w.OS != h.OS) || (w.Architecture != "" && w.Architecture != h.Architecture) {
		return 0
	}
	if w.OSVersion != "" && h.OSVersion != "" && w.OSVersion != h.OSVersion {
		return 0 // another OS version (containerd compares them too)
	}
	switch {
	case w.Variant == h.Variant || w.Architecture == "":
		return 2
	case have.Variant == "":
		return 1
	}
	return 0
}

// ParsePlatform parses os[(osversion)][/arch[/variant]] or a bare
// architecture ("linux/amd64", "linux/arm/v7", "arm64",
// "windows(10.0.20348.1006)/amd64") like containerd's platforms.Parse,
// and normalizes it.
func ParsePlatform(s string) (Platform, error) {
	osVersion := ""
	if i := strings.IndexByte(s, '('); i >= 0 {
		j := strings.IndexByte(s, ')')
		if j < i || (j+1 < len(s) && s[j+1] != '/') || j == i+1 || strings.ContainsAny(s[i+1:j], "(/") {
			return Platform{}, fmt.Errorf("invalid platform %q: want os(osversion)/arch", s)
		}
		osVersion = s[i+1 : j]
		s = s[:i] + s[j+1:]
	}
	p, err := parsePlatform(s)
	if err != nil {
		return Platform{}, err
	}
	p.OSVersion = osVersion
	return p, nil
}

func parsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, " \t\n") {
			return Platform{}, fmt.Errorf("invalid platform %q", s)
		}
	}
	var p Platform
	switch len(parts) {
	case 1:
		if knownOS[strings.ToLower(parts[0])] {
			p = Platform{OS: parts[0], Architecture: runtime.GOARCH}
		} else if _, ok := archAliases[strings.ToLower(parts[0])]; ok {
			p = Platform{OS: "linux", Architecture: parts[0]}
		} else {
			return Platform{}, fmt.Errorf("unknown operating system or architecture in platform %q", s)
		}
	case 2:
		p = Platform{OS: parts[0], Architecture: parts[1]}
	case 3:
		p = Platform{OS: parts[0], Architecture: parts[1], Variant: parts[2]}
	default:
		return Platform{}, fmt.Errorf("invalid platform %q: too many components", s)
	}
	if !knownOS[strings.ToLower(p.OS)] {
		return Platform{}, fmt.Errorf("unknown operating system %q in platform %q", p.OS, s)
	}
	return p.Normalize(), nil
}

// ParsePlatforms parses a comma-separated --platform list, as buildx:
// duplicates (after normalization) are dropped, order is kept.
func ParsePlatforms(s string) ([]Platform, error) {
	var out []Platform
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := ParsePlatform(f)
		if err != nil {
			return nil, err
		}
		dup := false
		for _, q := range out {
			dup = dup || q == p
		}
		if !dup {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("invalid platform %q", s)
	}
	return out, nil
}

// DirName is p as buildx names a platform's subdirectory of a local or
// tar output: "linux_arm64", "linux_arm_v7".
func (p Platform) DirName() string { return strings.ReplaceAll(p.String(), "/", "_") }
