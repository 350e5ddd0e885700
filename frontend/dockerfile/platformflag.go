package dockerfile

import "github.com/builderdev/builder/llb"

// ParsePlatform parses a --platform value ("linux/amd64", "linux/arm/v7",
// "arm64") into a normalized platform.
func ParsePlatform(s string) (llb.Platform, error) {
	p, err := parsePlatform(s)
	if err != nil {
		return llb.Platform{}, err
	}
	return normalizePlatform(p), nil
}

// HostPlatform is the platform of this machine, the only one RUN can
// execute on.
func HostPlatform() llb.Platform { return hostPlatform() }
