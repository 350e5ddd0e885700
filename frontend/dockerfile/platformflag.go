package dockerfile

import "github.com/builderdev/builder/llb"

// ParsePlatform parses a --platform value ("linux/amd64", "linux/arm/v7",
// "arm64") into a normalized platform.
func ParsePlatform(s string) (llb.Platform, error) { return parsePlatform(s) }

// HostPlatform is the platform of this machine, the only one RUN can
// execute on.
func HostPlatform() llb.Platform { return hostPlatform() }
