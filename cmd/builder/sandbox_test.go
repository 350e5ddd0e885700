package main

import (
	"reflect"
	"testing"

	"github.com/builderdev/builder/executor"
	"github.com/spf13/cobra"
)

func TestSandboxFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		want    SandboxOptions
		wantErr bool
	}{
		{"defaults", nil, SandboxOptions{Hostname: "builder", Network: "default"}, false},
		{"network none", []string{"--network", "none"}, SandboxOptions{Hostname: "builder", Network: "none"}, false},
		{"bad network", []string{"--network", "bridge"}, SandboxOptions{}, true},
		{"limits", []string{"--memory", "512m", "--memory-swap", "1g", "--cpus", "1.5", "--cpu-shares", "512",
			"--cpuset-cpus", "0", "--pids-limit", "100", "--device-read-bps", "/dev/sda:1mb", "--device-write-bps", "/dev/sda:2mb",
			"--cgroup-parent", "ci/jobs", "--hostname", "h1", "--allow", "security.insecure"},
			SandboxOptions{Hostname: "h1", CgroupParent: "ci/jobs", Allow: []string{"security.insecure"}, Network: "default", Limits: executor.Limits{
				Memory: 512 << 20, MemorySwap: 1 << 30, CPUs: 1.5, CPUShares: 512, CpusetCPUs: "0", PidsLimit: 100,
				DeviceReadBps:  []executor.DeviceRate{{Path: "/dev/sda", Rate: 1 << 20}},
				DeviceWriteBps: []executor.DeviceRate{{Path: "/dev/sda", Rate: 2 << 20}},
			}}, false},
		{"unlimited swap", []string{"-m", "64m", "--memory-swap", "-1"}, SandboxOptions{Hostname: "builder", Network: "default", Limits: executor.Limits{Memory: 64 << 20, MemorySwap: -1}}, false},
		{"swap below memory", []string{"-m", "64m", "--memory-swap", "32m"}, SandboxOptions{}, true},
		{"swap without memory", []string{"--memory-swap", "1g"}, SandboxOptions{}, true},
		{"tiny memory", []string{"-m", "1m"}, SandboxOptions{}, true},
		{"bad cpus", []string{"--cpus", "x"}, SandboxOptions{}, true},
		{"bad device rate", []string{"--device-read-bps", "sda:1mb"}, SandboxOptions{}, true},
		{"bad entitlement", []string{"--allow", "root"}, SandboxOptions{}, true},
		{"parent escapes", []string{"--cgroup-parent", "../x"}, SandboxOptions{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := &cobra.Command{Use: "build"}
			var got SandboxOptions
			sf := addSandboxFlags(cmd, &got)
			if err := cmd.Flags().Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := sf.parse()
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error for %v", tc.args)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
