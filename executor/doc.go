// Package executor runs one process (a RUN step) in a sandbox of its own
// and reports how it ended and what it used.
//
// The sandbox is built here, not by an external runtime: Run re-executes
// /proc/self/exe as the sandbox init in new mount, pid, uts and ipc
// namespaces (and a new network namespace for Network "none"), passes the
// Spec through a pipe and releases the init through a second pipe once it
// is in its cgroup (package executor/internal/cgroups). The init assembles the root
// filesystem, mounts /proc, a minimal /dev, a read-only /sys and read-only
// /etc/resolv.conf, /etc/hosts and /etc/hostname, pivot_roots into it,
// resolves the user from the image's /etc/passwd and /etc/group, and runs
// the command as a child it reaps (it is pid 1), forwarding signals. Mount
// points that the image did not have are removed again after the command,
// so the root filesystem's diff holds only what the command wrote.
//
// Programs that use the executor must call MaybeInit first thing in main
// (test binaries: in TestMain), since the same binary is the init, and
// then MaybeUnshare: a builder started by a non-root user re-executes
// itself as root of a user namespace (docs/rootless.md), where the
// sandboxes run without cgroups unless a hierarchy is delegated.
package executor
