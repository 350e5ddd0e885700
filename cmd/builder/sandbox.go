package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/llb"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// SandboxOptions are the flags of `builder build` that shape every RUN:
// hostname, cgroup limits and entitlements, with docker's names and syntax.
type SandboxOptions struct {
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
func (s SandboxOptions) AllowInsecure() bool { return s.allows("security.insecure") }

// AllowNetworkHost reports whether network.host was granted.
func (s SandboxOptions) AllowNetworkHost() bool { return s.allows("network.host") }

func (s SandboxOptions) allows(entitlement string) bool {
	for _, a := range s.Allow {
		if a == entitlement {
			return true
		}
	}
	return false
}

// sandboxFlags holds the raw flag values until parse.
type sandboxFlags struct {
	memory, memorySwap string
	cpus               string
	readBps, writeBps  []string
	addHosts, ulimits  []string
	shmSize            string
	opts               *SandboxOptions
}

// addSandboxFlags registers the flags on cmd; call parse after flag
// parsing.
func addSandboxFlags(cmd *cobra.Command, o *SandboxOptions) *sandboxFlags {
	s := &sandboxFlags{opts: o}
	f := cmd.Flags()
	f.StringVar(&o.Hostname, "hostname", executor.DefaultHostname, "Set the hostname of every RUN")
	f.StringVarP(&s.memory, "memory", "m", "", "Memory limit of every RUN (e.g. 512m)")
	f.StringVar(&s.memorySwap, "memory-swap", "", `Swap limit equal to memory plus swap: "-1" to enable unlimited swap`)
	f.StringVar(&s.cpus, "cpus", "", "Number of CPUs of every RUN (e.g. 1.5)")
	f.Uint64VarP(&o.Limits.CPUShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.StringVar(&o.Limits.CpusetCPUs, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.Int64Var(&o.Limits.PidsLimit, "pids-limit", 0, "Tune the pids limit of every RUN (0 = unlimited)")
	f.StringArrayVar(&s.readBps, "device-read-bps", nil, "Limit read rate (bytes per second) from a device (e.g. /dev/sda:1mb)")
	f.StringArrayVar(&s.writeBps, "device-write-bps", nil, "Limit write rate (bytes per second) to a device (e.g. /dev/sda:1mb)")
	f.StringVar(&o.CgroupParent, "cgroup-parent", "", "Parent cgroup of every RUN, relative to the builder's own cgroup")
	f.StringArrayVar(&o.Allow, "allow", nil, `Allow extra privileged entitlement (e.g. "security.insecure")`)
	f.StringVar(&o.Network, "network", "default", `Set the networking mode for the RUN instructions during build ("default", "host", "none")`)
	f.StringArrayVar(&s.addHosts, "add-host", nil, `Add a custom host-to-IP mapping to every RUN's /etc/hosts ("host:ip")`)
	f.StringVar(&s.shmSize, "shm-size", "", `Size of /dev/shm of every RUN (e.g. 128m; default 64m)`)
	f.StringArrayVar(&s.ulimits, "ulimit", nil, `Ulimit options of every RUN ("nofile=1024:2048")`)
	return s
}

// parseRunOptions parses --add-host, --shm-size and --ulimit.
func (s *sandboxFlags) parseRunOptions() error {
	o := s.opts
	for _, a := range s.addHosts {
		h, err := executor.ParseHost(a)
		if err != nil {
			return err
		}
		o.ExtraHosts = append(o.ExtraHosts, llb.HostIP{Host: h.Host, IP: h.IP})
	}
	if s.shmSize != "" {
		n, err := parseSize(s.shmSize)
		if err != nil || n <= 0 {
			return fmt.Errorf("invalid argument %q for \"--shm-size\" flag: want a size such as 128m", s.shmSize)
		}
		o.ShmSize = n
	}
	for _, u := range s.ulimits {
		l, err := executor.ParseUlimit(u)
		if err != nil {
			return err
		}
		o.Ulimits = append(o.Ulimits, llb.Ulimit{Name: l.Name, Soft: l.Soft, Hard: l.Hard})
	}
	return nil
}

// parse validates the raw values into the options.
func (s *sandboxFlags) parse() error {
	o := s.opts
	if err := s.parseRunOptions(); err != nil {
		return err
	}
	var err error
	if s.memory != "" {
		if o.Limits.Memory, err = parseSize(s.memory); err != nil {
			return fmt.Errorf("invalid argument %q for \"-m, --memory\" flag: %w", s.memory, err)
		}
		if o.Limits.Memory < 6<<20 {
			return fmt.Errorf("minimum memory limit allowed is 6MB")
		}
	}
	switch s.memorySwap {
	case "":
	case "-1":
		o.Limits.MemorySwap = -1
	default:
		if o.Limits.MemorySwap, err = parseSize(s.memorySwap); err != nil {
			return fmt.Errorf("invalid argument %q for \"--memory-swap\" flag: %w", s.memorySwap, err)
		}
	}
	if o.Limits.MemorySwap != 0 && o.Limits.Memory == 0 {
		return fmt.Errorf("you should always set the memory limit when using the memory swap limit")
	}
	if o.Limits.MemorySwap > 0 && o.Limits.MemorySwap < o.Limits.Memory {
		return fmt.Errorf("minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if s.cpus != "" {
		c, err := strconv.ParseFloat(s.cpus, 64)
		if err != nil || c < 0 || math.IsNaN(c) || math.IsInf(c, 0) {
			return fmt.Errorf("invalid argument %q for \"--cpus\" flag: must be a positive number", s.cpus)
		}
		o.Limits.CPUs = c
	}
	if o.Limits.PidsLimit < 0 {
		o.Limits.PidsLimit = 0 // docker: -1 and 0 are unlimited
	}
	if o.Limits.DeviceReadBps, err = parseDeviceRates("--device-read-bps", s.readBps); err != nil {
		return err
	}
	if o.Limits.DeviceWriteBps, err = parseDeviceRates("--device-write-bps", s.writeBps); err != nil {
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

// parseSize parses docker's size syntax, as docker's --memory,
// --memory-swap, --device-*-bps and builder prune --keep-storage do (go-units
// RAMInBytes): a number, decimals allowed, with an optional binary unit
// b, k, m, g, t or p ("512m", "1.5g", "64MiB", "1t").
func parseSize(s string) (int64, error) {
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
		rate, err := parseSize(v[i+1:])
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for %s: invalid rate: %w", v, flag, err)
		}
		out = append(out, executor.DeviceRate{Path: v[:i], Rate: uint64(rate)})
	}
	return out, nil
}

// defaultNetwork is the llb network of a RUN that asks for none (--network).
func (s SandboxOptions) defaultNetwork() llb.NetMode {
	if s.Network == "none" {
		return llb.NetNone
	}
	return llb.NetHost
}

// build is the library's form of the options.
func (s SandboxOptions) build() build.Sandbox {
	return build.Sandbox{
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
