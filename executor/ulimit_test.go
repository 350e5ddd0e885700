package executor

import (
	"strings"
	"testing"
)

func TestParseUlimitAndHost(t *testing.T) {
	for in, want := range map[string]Ulimit{
		"nofile=1024:2048": {"nofile", 1024, 2048},
		"nproc=100":        {"nproc", 100, 100},
		"core=-1":          {"core", -1, -1},
		"memlock=64:-1":    {"memlock", 64, -1},
	} {
		if got, err := ParseUlimit(in); err != nil || got != want {
			t.Errorf("ParseUlimit(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"nofiles=1": "invalid ulimit type", "nofile": "NAME=SOFT", "nofile=x": "not a number",
		"nofile=10:5": "greater than hard", "nofile=-1:5": "greater than hard"} {
		if _, err := ParseUlimit(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseUlimit(%q) = %v, want %q", in, err, want)
		}
	}
	for in, want := range map[string]HostIP{"db:10.0.0.2": {"db", "10.0.0.2"}, "db=10.0.0.2": {"db", "10.0.0.2"},
		"v6:::1": {"v6", "::1"}, "v6=[fe80::1]": {"v6", "fe80::1"}} {
		if got, err := ParseHost(in); err != nil || got != want {
			t.Errorf("ParseHost(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"db": "HOST:IP", "db:notanip": "not an IP", "db:host-gateway": "host-gateway", ":1.2.3.4": "HOST:IP"} {
		if _, err := ParseHost(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseHost(%q) = %v, want %q", in, err, want)
		}
	}
}

// TestRunHostsShmUlimits: the extra hosts are in /etc/hosts, /dev/shm has
// the size asked, the limits are set on the command.
func TestRunHostsShmUlimits(t *testing.T) {
	e, root := busyboxExecutor(t)
	r := run(t, e, Spec{Rootfs: bindRoot(root), Args: sh(`cat /etc/hosts; df -k /dev/shm | tail -n 1 | awk '{print "shm", $2}'; echo "nofile $(ulimit -n) $(ulimit -Hn)"`),
		ExtraHosts: []HostIP{{"db", "10.0.0.2"}, {"v6", "::1"}}, ShmSize: 32 << 20, Ulimits: []Ulimit{{"nofile", 512, 1024}}})
	if r.err != nil {
		t.Fatalf("%v: %s", r.err, r.stderr)
	}
	for _, want := range []string{"10.0.0.2\tdb\n", "::1\tv6\n", "shm 32768\n", "nofile 512 1024\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = run(t, e, Spec{Rootfs: bindRoot(root), Args: sh(`df -k /dev/shm | tail -n 1 | awk '{print "shm", $2}'`)})
	if !strings.Contains(r.stdout, "shm 65536\n") {
		t.Errorf("default /dev/shm: %s", r.stdout)
	}
}
