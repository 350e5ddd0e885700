package build

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/llb"
	"github.com/docker/go-units"
)

// SandboxSpec is what the flags of `builder build` that shape every RUN
// say: hostname, cgroup limits and entitlements, with docker's names.
// Sandbox turns it into the typed Sandbox of a Request.
type SandboxSpec struct {
	Hostname     string
	Limits       executor.Limits
	CgroupParent string
	// Allow are the granted entitlements (--allow security.insecure).
	Allow []string
	// Network is --network: the network of every RUN that does not ask
	// for one ("default" or "" = the host's, "host", "none").
	Network string
	// ExtraHosts, ShmSize and Ulimits are --add-host, --shm-size and
	// --ulimit of every RUN.
	ExtraHosts []llb.HostIP
	ShmSize    int64
	Ulimits    []llb.Ulimit
}

// AllowInsecure reports whether security.insecure was granted.
func (s SandboxSpec) AllowInsecure() bool { return s.allows("security.insecure") }

// AllowNetworkHost reports whether network.host was granted.
func (s SandboxSpec) AllowNetworkHost() bool { return s.allows("network.host") }

func (s SandboxSpec) allows(entitlement string) bool {
	for _, a := range s.Allow {
		if a == entitlement {
			return true
		}
	}
	return false
}

// SandboxFlags are the raw values of the sandbox flags that need
// parsing (sizes, rates, host and ulimit entries); Apply checks them.
type SandboxFlags struct {
	Memory, MemorySwap string
	CPUs               string
	ReadBps, WriteBps  []string
	AddHosts, Ulimits  []string
	ShmSize            string
}

// parseRunOptions parses --add-host, --shm-size and --ulimit into o.
func (s SandboxFlags) parseRunOptions(o *SandboxSpec) error {
	for _, a := range s.AddHosts {
		h, err := executor.ParseHost(a)
		if err != nil {
			return err
		}
		o.ExtraHosts = append(o.ExtraHosts, llb.HostIP{Host: h.Host, IP: h.IP})
	}
	if s.ShmSize != "" {
		n, err := ParseSize(s.ShmSize)
		if err != nil || n <= 0 {
			return fmt.Errorf("invalid argument %q for \"--shm-size\" flag: want a size such as 128m", s.ShmSize)
		}
		o.ShmSize = n
	}
	for _, u := range s.Ulimits {
		l, err := executor.ParseUlimit(u)
		if err != nil {
			return err
		}
		o.Ulimits = append(o.Ulimits, llb.Ulimit{Name: l.Name, Soft: l.Soft, Hard: l.Hard})
	}
	return nil
}

// Apply validates the raw values into o, as docker build checks them.
func (s SandboxFlags) Apply(o *SandboxSpec) error {
	if err := s.parseRunOptions(o); err != nil {
		return err
	}
	var err error
	if s.Memory != "" {
		if o.Limits.Memory, err = ParseSize(s.Memory); err != nil {
			return fmt.Errorf("invalid argument %q for \"-m, --memory\" flag: %w", s.Memory, err)
		}
		if o.Limits.Memory < 6<<20 {
			return fmt.Errorf("minimum memory limit allowed is 6MB")
		}
	}
	switch s.MemorySwap {
	case "":
	case "-1":
		o.Limits.MemorySwap = -1
	default:
		if o.Limits.MemorySwap, err = ParseSize(s.MemorySwap); err != nil {
			return fmt.Errorf("invalid argument %q for \"--memory-swap\" flag: %w", s.MemorySwap, err)
		}
	}
	if o.Limits.MemorySwap != 0 && o.Limits.Memory == 0 {
		return fmt.Errorf("you should always set the memory limit when using the memory swap limit")
	}
	if o.Limits.MemorySwap > 0 && o.Limits.MemorySwap < o.Limits.Memory {
		return fmt.Errorf("minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if s.CPUs != "" {
		c, err := strconv.ParseFloat(s.CPUs, 64)
		if err != nil || c < 0 || math.IsNaN(c) || math.IsInf(c, 0) {
			return fmt.Errorf("invalid argument %q for \"--cpus\" flag: must be a positive number", s.CPUs)
		}
		o.Limits.CPUs = c
	}
	if o.Limits.PidsLimit < 0 {
		o.Limits.PidsLimit = 0 // docker: -1 and 0 are unlimited
	}
	if o.Limits.DeviceReadBps, err = parseDeviceRates("--device-read-bps", s.ReadBps); err != nil {
		return err
	}
	if o.Limits.DeviceWriteBps, err = parseDeviceRates("--device-write-bps", s.WriteBps); err != nil {
		return err
	}
	if strings.Contains("/"+o.CgroupParent+"/", "/../") {
		return fmt.Errorf("invalid --cgroup-parent %q: must not contain ..", o.CgroupParent)
	}
	o.CgroupParent = strings.Trim(o.CgroupParent, "/")
	for _, a := range o.Allow {
		switch a {
		case "security.insecure", "network.host":
		default:
			return fmt.Errorf("invalid entitlement %q for --allow (supported: security.insecure, network.host)", a)
		}
	}
	switch o.Network {
	case "", "default", "host", "none":
	default:
		return fmt.Errorf("invalid --network %q: must be default, host or none", o.Network)
	}
	if o.Hostname == "" {
		o.Hostname = executor.DefaultHostname
	}
	return nil
}

// ParseSize parses docker's size syntax, as docker's --memory,
// --memory-swap, --device-*-bps and builder prune --keep-storage do (go-units
// RAMInBytes): a number, decimals allowed, with an optional binary unit
// b, k, m, g, t or p ("512m", "1.5g", "64MiB", "1t").
func ParseSize(s string) (int64, error) {
	n, err := units.RAMInBytes(strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("size %s is too large", s)
	}
	return n, nil
}

// parseDeviceRates parses "PATH:RATE" values (RATE in docker's size
// syntax, bytes per second).
func parseDeviceRates(flag string, vals []string) ([]executor.DeviceRate, error) {
	var out []executor.DeviceRate
	for _, v := range vals {
		i := strings.LastIndex(v, ":")
		if i <= 0 || !strings.HasPrefix(v, "/dev/") {
			return nil, fmt.Errorf("invalid argument %q for %s: bad format, expected /dev/DEVICE:RATE", v, flag)
		}
		rate, err := ParseSize(v[i+1:])
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for %s: invalid rate: %w", v, flag, err)
		}
		out = append(out, executor.DeviceRate{Path: v[:i], Rate: uint64(rate)})
	}
	return out, nil
}

// defaultNetwork is the llb network of a RUN that asks for none (--network).
func (s SandboxSpec) defaultNetwork() llb.NetMode {
	if s.Network == "none" {
		return llb.NetNone
	}
	return llb.NetHost
}

// Sandbox is the library's form of the options.
func (s SandboxSpec) Sandbox() Sandbox {
	return Sandbox{
		Hostname:         s.Hostname,
		Limits:           s.Limits,
		CgroupParent:     s.CgroupParent,
		AllowInsecure:    s.AllowInsecure(),
		AllowNetworkHost: s.AllowNetworkHost(),
		Network:          s.defaultNetwork(),
		ExtraHosts:       s.ExtraHosts,
		ShmSize:          s.ShmSize,
		Ulimits:          s.Ulimits,
	}
}
