package executor

import (
	"bufio"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseSubIDs(t *testing.T) {
	const file = "# comment\nalice:100000:65536\nbob:165536:65536\n1001:300000:10\nalice:500000:100\nbad line\ncarol:x:1\n"
	tests := []struct {
		name string
		user string
		uid  uint32
		want []IDRange
	}{
		{"by name, two ranges in order", "alice", 1000, []IDRange{{1, 100000, 65536}, {65537, 500000, 100}}},
		{"by uid", "dave", 1001, []IDRange{{1, 300000, 10}}},
		{"none", "erin", 1002, nil},
		{"bad numbers skipped", "carol", 1003, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSubIDs(bufio.NewScanner(strings.NewReader(file)), tc.user, tc.uid)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMapped(t *testing.T) {
	ranges := []IDRange{{0, 1000, 1}, {1, 100000, 65536}}
	for _, tc := range []struct {
		id   uint32
		want bool
	}{{0, true}, {1, true}, {1000, true}, {65536, true}, {65537, false}, {4294967295, false}} {
		if got := mapped(ranges, tc.id); got != tc.want {
			t.Errorf("mapped(%d) = %v, want %v", tc.id, got, tc.want)
		}
	}
	if mapped(nil, 0) {
		t.Error("an empty map maps 0")
	}
}

func TestWithStage(t *testing.T) {
	got := withStage([]string{"A=1", usernsStageEnv + "=1", "B=2"}, "2")
	want := []string{"A=1", "B=2", usernsStageEnv + "=2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestLimitFlags(t *testing.T) {
	tests := []struct {
		l    Limits
		want []string
	}{
		{Limits{}, nil},
		{Limits{Memory: 1 << 20}, []string{"--memory"}},
		{Limits{CPUs: 1, PidsLimit: 10, DeviceWriteBps: []DeviceRate{{"/dev/sda", 1}}}, []string{"--cpus", "--pids-limit", "--device-write-bps"}},
		{Limits{MemorySwap: -1, CPUShares: 2, CpusetCPUs: "0"}, []string{"--memory-swap", "--cpu-shares", "--cpuset-cpus"}},
	}
	for _, tc := range tests {
		if got := limitFlags(tc.l); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("limitFlags(%+v) = %v, want %v", tc.l, got, tc.want)
		}
	}
}

// TestRunRefusesLimitsWithoutCgroups: an executor without cgroups (rootless
// without delegation, root without a cgroup mount) names the limits it cannot honour instead of
// running without them.
func TestRunRefusesLimitsWithoutCgroups(t *testing.T) {
	e := &Executor{stateDir: t.TempDir(), cgroupErr: errors.New("mkdir: permission denied")}
	_, err := e.Run(context.Background(), Spec{
		Rootfs: []Mount{{Type: "bind", Source: t.TempDir(), Options: []string{"rbind"}}},
		Args:   []string{"true"},
		Limits: Limits{Memory: 64 << 20, PidsLimit: 5},
	})
	if err == nil || !strings.Contains(err.Error(), "--memory, --pids-limit needs "+e.cgroupNeed()) {
		t.Fatalf("err = %v", err)
	}
	if e.CgroupError() == nil {
		t.Error("CgroupError is nil")
	}
}

func TestRootlessHere(t *testing.T) {
	// The test process runs in the initial user namespace unless the
	// whole test runs in a container's user namespace: compare with
	// the kernel's view.
	m, err := readIDMap("/proc/self/uid_map")
	if err != nil {
		t.Skip(err)
	}
	want := !(len(m) == 1 && m[0] == IDRange{0, 0, 4294967295})
	if Rootless() != want {
		t.Errorf("Rootless() = %v with uid_map %v", Rootless(), m)
	}
}
