package executor

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// HostIP is one /etc/hosts entry.
type HostIP struct {
	Host, IP string
}

// Ulimit is one resource limit by docker's name ("nofile"); -1 is
// unlimited.
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// rlimits maps docker's --ulimit names to setrlimit resources.
var rlimits = map[string]int{
	"core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA, "fsize": unix.RLIMIT_FSIZE,
	"locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK, "msgqueue": unix.RLIMIT_MSGQUEUE,
	"nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE, "nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS,
	"rtprio": unix.RLIMIT_RTPRIO, "rttime": unix.RLIMIT_RTTIME, "sigpending": unix.RLIMIT_SIGPENDING, "stack": unix.RLIMIT_STACK,
}

// ParseUlimit parses docker's --ulimit NAME=SOFT[:HARD] (HARD defaults
// to SOFT; -1 is unlimited).
func ParseUlimit(s string) (Ulimit, error) {
	name, val, ok := strings.Cut(s, "=")
	if !ok {
		return Ulimit{}, fmt.Errorf("invalid ulimit argument %q: want NAME=SOFT[:HARD]", s)
	}
	if _, ok := rlimits[name]; !ok {
		names := make([]string, 0, len(rlimits))
		for n := range rlimits {
			names = append(names, n)
		}
		sort.Strings(names)
		return Ulimit{}, fmt.Errorf("invalid ulimit type %q (one of %s)", name, strings.Join(names, ", "))
	}
	softS, hardS, hasHard := strings.Cut(val, ":")
	soft, err := strconv.ParseInt(softS, 10, 64)
	if err != nil || soft < -1 {
		return Ulimit{}, fmt.Errorf("invalid ulimit %q: soft limit %q is not a number (or -1)", s, softS)
	}
	hard := soft
	if hasHard {
		if hard, err = strconv.ParseInt(hardS, 10, 64); err != nil || hard < -1 {
			return Ulimit{}, fmt.Errorf("invalid ulimit %q: hard limit %q is not a number (or -1)", s, hardS)
		}
	}
	if hard != -1 && (soft == -1 || soft > hard) {
		return Ulimit{}, fmt.Errorf("invalid ulimit %q: soft limit %d is greater than hard limit %d", s, soft, hard)
	}
	return Ulimit{Name: name, Soft: soft, Hard: hard}, nil
}

// ParseHost parses docker's --add-host HOST:IP (or HOST=IP); the IP may
// be IPv6 ("myhost:::1", "myhost=[::1]").
func ParseHost(s string) (HostIP, error) {
	host, ip, ok := strings.Cut(s, "=")
	if !ok {
		host, ip, ok = strings.Cut(s, ":")
	}
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	if !ok || host == "" || strings.ContainsAny(host, " \t\n#") {
		return HostIP{}, fmt.Errorf("invalid argument %q for --add-host: want HOST:IP", s)
	}
	if ip == "host-gateway" {
		return HostIP{}, fmt.Errorf("invalid argument %q for --add-host: host-gateway needs a daemon's gateway; give the IP", s)
	}
	if net.ParseIP(ip) == nil {
		return HostIP{}, fmt.Errorf("invalid argument %q for --add-host: %q is not an IP address", s, ip)
	}
	return HostIP{Host: host, IP: ip}, nil
}

// setUlimits applies limits to the calling process (the sandbox init,
// before it starts the command, which inherits them).
func setUlimits(limits []Ulimit) error {
	for _, l := range limits {
		res, ok := rlimits[l.Name]
		if !ok {
			return fmt.Errorf("ulimit %s: unknown resource", l.Name)
		}
		lim := unix.Rlimit{Cur: rlimValue(l.Soft), Max: rlimValue(l.Hard)}
		if err := unix.Setrlimit(res, &lim); err != nil {
			return fmt.Errorf("setting ulimit %s=%d:%d: %w", l.Name, l.Soft, l.Hard, err)
		}
	}
	return nil
}

func rlimValue(v int64) uint64 {
	if v < 0 {
		return unix.RLIM_INFINITY
	}
	return uint64(v)
}
