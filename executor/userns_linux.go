package executor

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// usernsStageEnv tells a re-executed builder which step of entering the
// user namespace it is at: "1" (in the new namespace, waiting for its id
// mappings), "2" (mapped and re-executed as root of the namespace).
const usernsStageEnv = "_BUILDER_USERNS_STAGE"

// usernsParentEnv carries the pid of the builder that waits outside the
// user namespace to the re-executed builder inside.
const usernsParentEnv = "_BUILDER_USERNS_PARENT"

// fdUsernsSync is the descriptor stage 1 reads its go-ahead from.
const fdUsernsSync = 3

// unshareErr is why MaybeUnshare could not move a non-root builder into a
// user namespace; New reports it.
var unshareErr error

// MaybeUnshare makes a builder started by a non-root user root of a user
// namespace of its own, so that it can mount (overlayfs, the sandbox's
// bind mounts), chown to any mapped id and create the sandbox's
// namespaces. Call it in main right after MaybeInit.
//
// For euid 0 it returns at once. Otherwise it re-executes the binary with
// the same arguments in a new user and mount namespace and exits with the
// child's status; the child is mapped by the setuid helpers newuidmap and
// newgidmap as 0 -> the user's uid (gid) and 1.. -> the user's ranges in
// /etc/subuid (/etc/subgid), or, without helpers or ranges, with the
// single mapping 0 -> uid (gid) and setgroups denied. Everything the
// builder mounts lives in the child's mount namespace and is gone when it
// exits. When no user namespace can be made MaybeUnshare returns and New
// fails with the reason.
func MaybeUnshare() {
	switch os.Getenv(usernsStageEnv) {
	case "1":
		os.Exit(usernsStage1())
	case "2":
		os.Unsetenv(usernsStageEnv)
		ownUserNS = true
		parent := os.Getenv(usernsParentEnv)
		os.Unsetenv(usernsParentEnv)
		// The execve that made this process root of the namespace
		// cleared the parent-death signal: set it again, and go if
		// the parent died before.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGTERM), 0, 0, 0); err != nil {
			unshareErr = fmt.Errorf("setting the parent-death signal: %w", err)
			return
		}
		if strconv.Itoa(os.Getppid()) != parent {
			os.Exit(1)
		}
		// Mounts made here must never propagate anywhere (the kernel
		// already turned the copied shared mounts into slaves).
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			unshareErr = fmt.Errorf("making / rprivate in the user namespace: %w", err)
		}
		return
	}
	if os.Geteuid() == 0 {
		return
	}
	code, err := runInUserNS()
	if err != nil {
		unshareErr = err
		return
	}
	os.Exit(code)
}

// usernsStage1 waits for the parent to write the id mappings, then
// re-executes the binary: the capabilities of the namespace's root are
// granted by an execve as uid 0, which this process was not at its own
// execve (its ids were not mapped yet).
func usernsStage1() int {
	syncPipe := os.NewFile(fdUsernsSync, "userns-sync")
	var b [1]byte
	if n, _ := syncPipe.Read(b[:]); n != 1 {
		fmt.Fprintln(os.Stderr, "builder: the user namespace was not set up (the parent gave up)")
		return 1
	}
	syncPipe.Close()
	if os.Geteuid() != 0 {
		fmt.Fprintf(os.Stderr, "builder: still uid %d after the user namespace's id mapping\n", os.Geteuid())
		return 1
	}
	env := append(withStage(os.Environ(), "2"), usernsParentEnv+"="+strconv.Itoa(os.Getppid()))
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	err = syscall.Exec("/proc/self/exe", os.Args, env)
	fmt.Fprintf(os.Stderr, "builder: re-executing %s in the user namespace: %v\n", exe, err)
	return 1
}

// withStage returns env with usernsStageEnv set to stage (once: getenv
// takes the first of duplicates).
func withStage(env []string, stage string) []string {
	out := make([]string, 0, len(env)+1)
	for _, e := range env {
		if !strings.HasPrefix(e, usernsStageEnv+"=") {
			out = append(out, e)
		}
	}
	return append(out, usernsStageEnv+"="+stage)
}

// runInUserNS runs the builder again in a new user namespace, maps its ids
// and waits for it, forwarding signals. It returns the exit code.
func runInUserNS() (int, error) {
	ids, err := lookupSubIDs()
	if err != nil {
		return 0, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("user namespace: %w", err)
	}
	defer w.Close()
	// Pdeathsig follows the thread that started the child: keep it.
	runtime.LockOSThread()
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = withStage(os.Environ(), "1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{r}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS,
		Pdeathsig:  unix.SIGTERM,
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH)
	defer signal.Stop(signals)
	if err := cmd.Start(); err != nil {
		r.Close()
		return 0, fmt.Errorf("creating a user namespace (needs unprivileged user namespaces: sysctl user.max_user_namespaces > 0): %w", err)
	}
	r.Close()
	if err := ids.apply(cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, err
	}
	if _, err := w.Write([]byte{1}); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, fmt.Errorf("releasing the builder in its user namespace: %w", err)
	}
	w.Close()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-signals:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("waiting for the builder in its user namespace: %w", err)
	}
	return 0, nil
}

// IDRange maps Size ids from Host (outside) to Container (inside).
type IDRange struct {
	Container, Host, Size uint32
}

// subIDs is how the calling user's ids are mapped into the namespace.
type subIDs struct {
	user     string
	uid, gid uint32
	// subUID and subGID are the ranges of /etc/subuid and /etc/subgid.
	subUID, subGID []IDRange
}

// lookupSubIDs reads the calling user's subordinate id ranges.
func lookupSubIDs() (*subIDs, error) {
	s := &subIDs{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}
	s.user = strconv.Itoa(int(s.uid))
	if u, err := user.LookupId(s.user); err == nil {
		s.user = u.Username
	}
	var err error
	if s.subUID, err = readSubIDFile("/etc/subuid", s.user, s.uid); err != nil {
		return nil, err
	}
	if s.subGID, err = readSubIDFile("/etc/subgid", s.user, s.uid); err != nil {
		return nil, err
	}
	return s, nil
}

// readSubIDFile returns the ranges of path ("name:start:count" lines) that
// belong to the user (by name or uid), mapped from container id 1 on.
func readSubIDFile(path, name string, uid uint32) ([]IDRange, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	return parseSubIDs(bufio.NewScanner(f), name, uid)
}

func parseSubIDs(sc *bufio.Scanner, name string, uid uint32) ([]IDRange, error) {
	var out []IDRange
	next := uint32(1)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, ":")
		if len(parts) != 3 || (parts[0] != name && parts[0] != strconv.Itoa(int(uid))) {
			continue
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 32)
		count, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 || uint64(next)+count > 1<<32-1 {
			continue
		}
		out = append(out, IDRange{Container: next, Host: uint32(start), Size: uint32(count)})
		next += uint32(count)
	}
	return out, sc.Err()
}

// apply writes the id mappings of the process pid, which waits in its new
// user namespace.
func (s *subIDs) apply(pid int) error {
	uidOK := len(s.subUID) > 0 && s.helper("newuidmap", pid, s.uid, s.subUID) == nil
	gidOK := len(s.subGID) > 0 && s.helper("newgidmap", pid, s.gid, s.subGID) == nil
	if !uidOK || !gidOK {
		fmt.Fprintf(os.Stderr, "builder: rootless: no subordinate ids for %s in /etc/subuid and /etc/subgid usable through newuidmap/newgidmap (package uidmap): mapping only uid %d and gid %d to root; RUN steps can use no other user\n", s.user, s.uid, s.gid)
	}
	if !gidOK {
		// An unprivileged gid_map needs setgroups denied first.
		p := fmt.Sprintf("/proc/%d/setgroups", pid)
		if err := os.WriteFile(p, []byte("deny"), 0); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
	}
	for _, m := range []struct {
		ok   bool
		file string
		id   uint32
	}{{uidOK, "uid_map", s.uid}, {gidOK, "gid_map", s.gid}} {
		if m.ok {
			continue
		}
		p := fmt.Sprintf("/proc/%d/%s", pid, m.file)
		if err := os.WriteFile(p, []byte(fmt.Sprintf("0 %d 1\n", m.id)), 0); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
	}
	return nil
}

// helper runs newuidmap or newgidmap for pid: 0 -> id, then the ranges.
func (s *subIDs) helper(name string, pid int, id uint32, ranges []IDRange) error {
	path, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/bin", "/usr/sbin", "/bin", "/sbin"} {
			if fi, err2 := os.Stat(dir + "/" + name); err2 == nil && fi.Mode().IsRegular() {
				path, err = dir+"/"+name, nil
				break
			}
		}
		if err != nil {
			return err
		}
	}
	args := []string{strconv.Itoa(pid), "0", strconv.FormatUint(uint64(id), 10), "1"}
	for _, r := range ranges {
		args = append(args, strconv.FormatUint(uint64(r.Container), 10), strconv.FormatUint(uint64(r.Host), 10), strconv.FormatUint(uint64(r.Size), 10))
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "builder: rootless: %s %s: %v: %s\n", path, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		return err
	}
	return nil
}

var (
	usernsOnce sync.Once
	usernsIn   bool
	uidMap     []IDRange
	gidMap     []IDRange
)

func loadUserNS() {
	usernsOnce.Do(func() {
		uidMap, _ = readIDMap("/proc/self/uid_map")
		gidMap, _ = readIDMap("/proc/self/gid_map")
		usernsIn = !(len(uidMap) == 1 && uidMap[0] == IDRange{0, 0, 4294967295})
	})
}

// readIDMap parses /proc/self/{uid,gid}_map.
func readIDMap(path string) ([]IDRange, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []IDRange
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		var v [3]uint64
		for i := range f {
			if v[i], err = strconv.ParseUint(f[i], 10, 32); err != nil {
				return nil, fmt.Errorf("%s: bad line %q", path, line)
			}
		}
		out = append(out, IDRange{uint32(v[0]), uint32(v[1]), uint32(v[2])})
	}
	return out, nil
}

// Rootless reports whether the process runs in a user namespace other
// than the initial one (for the builder: started by a non-root user and
// moved there by MaybeUnshare).
func Rootless() bool {
	loadUserNS()
	return usernsIn
}

// mapped reports whether id is in one of ranges' container ids.
func mapped(ranges []IDRange, id uint32) bool {
	for _, r := range ranges {
		if id >= r.Container && uint64(id) < uint64(r.Container)+uint64(r.Size) {
			return true
		}
	}
	return false
}

// checkMapped returns a clear error when the command's user or group has
// no id in the user namespace (setuid to it would fail with EINVAL).
func checkMapped(u *ExecUser) error {
	if !Rootless() {
		return nil
	}
	if !mapped(uidMap, u.UID) {
		return fmt.Errorf("uid %d is not mapped in the builder's user namespace (rootless): give the user running builder a range in /etc/subuid and install newuidmap (package uidmap)", u.UID)
	}
	if !mapped(gidMap, u.GID) {
		return fmt.Errorf("gid %d is not mapped in the builder's user namespace (rootless): give the user running builder a range in /etc/subgid and install newgidmap (package uidmap)", u.GID)
	}
	return nil
}

// setgroupsDenied reports whether setgroups(2) is denied in this user
// namespace (the single-id mapping).
func setgroupsDenied() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(b)) == "deny"
}

// lockedFlags are the flags of the mount at path that a remount in a user
// namespace must keep: the kernel locks nosuid, nodev, noexec and the
// atime mode of mounts inherited from a more privileged namespace.
func lockedFlags(path string) uintptr {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0
	}
	var f uintptr
	for _, x := range []struct {
		st int64
		ms uintptr
	}{
		{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if st.Flags&x.st != 0 {
			f |= x.ms
		}
	}
	if st.Flags&(unix.ST_NOATIME|unix.ST_RELATIME) == 0 {
		f |= unix.MS_STRICTATIME
	}
	return f
}
