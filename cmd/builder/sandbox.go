package main

import (
	"github.com/builderdev/builder/build"
	"github.com/builderdev/builder/executor"
	"github.com/spf13/cobra"
)

// SandboxOptions are the flags of `builder build` that shape every RUN.
type SandboxOptions = build.SandboxSpec

// sandboxFlags holds the raw flag values until parse.
type sandboxFlags struct {
	build.SandboxFlags
	opts *SandboxOptions
}

// addSandboxFlags registers the flags on cmd; call parse after flag
// parsing.
func addSandboxFlags(cmd *cobra.Command, o *SandboxOptions) *sandboxFlags {
	s := &sandboxFlags{opts: o}
	f := cmd.Flags()
	f.StringVar(&o.Hostname, "hostname", executor.DefaultHostname, "Set the hostname of every RUN")
	f.StringVarP(&s.Memory, "memory", "m", "", "Memory limit of every RUN (e.g. 512m)")
	f.StringVar(&s.MemorySwap, "memory-swap", "", `Swap limit equal to memory plus swap: "-1" to enable unlimited swap`)
	f.StringVar(&s.CPUs, "cpus", "", "Number of CPUs of every RUN (e.g. 1.5)")
	f.Uint64VarP(&o.Limits.CPUShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.StringVar(&o.Limits.CpusetCPUs, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.Int64Var(&o.Limits.PidsLimit, "pids-limit", 0, "Tune the pids limit of every RUN (0 = unlimited)")
	f.StringArrayVar(&s.ReadBps, "device-read-bps", nil, "Limit read rate (bytes per second) from a device (e.g. /dev/sda:1mb)")
	f.StringArrayVar(&s.WriteBps, "device-write-bps", nil, "Limit write rate (bytes per second) to a device (e.g. /dev/sda:1mb)")
	f.StringVar(&o.CgroupParent, "cgroup-parent", "", "Parent cgroup of every RUN, relative to the builder's own cgroup")
	f.StringArrayVar(&o.Allow, "allow", nil, `Allow extra privileged entitlement (e.g. "security.insecure")`)
	f.StringVar(&o.Network, "network", "default", `Set the networking mode for the RUN instructions during build ("default", "host", "none")`)
	f.StringArrayVar(&s.AddHosts, "add-host", nil, `Add a custom host-to-IP mapping to every RUN's /etc/hosts ("host:ip")`)
	f.StringVar(&s.ShmSize, "shm-size", "", `Size of /dev/shm of every RUN (e.g. 128m; default 64m)`)
	f.StringArrayVar(&s.Ulimits, "ulimit", nil, `Ulimit options of every RUN ("nofile=1024:2048")`)
	return s
}

// parse validates the raw values into the options.
func (s *sandboxFlags) parse() error { return s.Apply(s.opts) }
