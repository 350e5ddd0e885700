// Package seccomp builds the seccomp filter of the RUN sandbox: Docker's
// default profile (moby/profiles/seccomp/default.json) for the default
// capability set, as classic BPF assembled here, so that the binary needs
// neither cgo nor libseccomp.
//
// The profile allows the syscalls ordinary programs use and refuses with
// EPERM those that reach the kernel's shared state or widen the attack
// surface: new namespaces (clone and unshare with namespace flags, setns),
// mount and the new mount API, the keyring (add_key, keyctl,
// request_key), bpf, perf_event_open, io_uring, kexec, module loading, ptrace of
// other tasks' memory beyond what the default profile allows, reboot,
// clock setting, userfaultfd, and every syscall the profile does not know
// (new ones are refused until they are reviewed, as Docker does). clone3
// fails with ENOSYS instead, so that C libraries fall back to clone,
// whose flags the filter can inspect.
//
// The filter is for the architecture the binary was built for (amd64 and
// arm64). A foreign-architecture RUN goes through qemu-user, a process of
// the host architecture: the filter sees qemu's host syscalls, which are
// the guest's translated, so the same profile holds (as in BuildKit).
// Syscalls of another ABI of the same kernel (i386 or x32 on amd64, arm32
// on arm64) are refused: Docker allows those ABIs with their own tables.
package seccomp
