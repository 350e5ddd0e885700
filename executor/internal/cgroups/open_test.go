package cgroups

import "testing"

// TestOpenRefusesForeignDirs: a record read from disk can only name
// builder groups under the cgroup mount.
func TestOpenRefusesForeignDirs(t *testing.T) {
	if _, err := Detect(); err != nil {
		t.Skipf("no cgroup hierarchy: %v", err)
	}
	for _, tc := range []struct {
		dirs    map[string]string
		parents []string
		ok      bool
	}{
		{map[string]string{"memory": "/sys/fs/cgroup/memory/x/builder-1"}, nil, true},
		{map[string]string{"memory": "/sys/fs/cgroup/memory/x/builder-1"}, []string{"/sys/fs/cgroup/memory/x"}, true},
		{map[string]string{"memory": "/sys/fs/cgroup/memory/system.slice"}, nil, false},
		{map[string]string{"memory": "/sys/fs/cgroup/memory/../../etc/builder-1"}, nil, false},
		{map[string]string{"memory": "/etc/builder-1"}, nil, false},
		{map[string]string{"memory": "/sys/fs/cgroup/memory/builder-1"}, []string{"/etc"}, false},
		{nil, nil, false},
	} {
		_, err := Open(tc.dirs, tc.parents)
		if (err == nil) != tc.ok {
			t.Errorf("Open(%v, %v): err = %v, want ok=%v", tc.dirs, tc.parents, err, tc.ok)
		}
	}
}
