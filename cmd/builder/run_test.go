package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/builderdev/builder/exporter"
	"github.com/builderdev/builder/internal/registrytest"
	"github.com/builderdev/builder/run"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"
)

// runTestImage is the busybox base with a working directory, an env var
// and a default command.
func runTestImage(t *testing.T) v1.Image {
	t.Helper()
	base, err := registrytest.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config
	cfg.Env = append(cfg.Env, "FOO=from-image")
	cfg.WorkingDir = "/tmp"
	cfg.Cmd = []string{"echo", "default", "cmd"}
	img, err := mutate.Config(base, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// writeLayout writes img as an OCI layout directory and as a tar of it.
func writeLayout(t *testing.T, img v1.Image) (dir, tarFile string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	tarFile = filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(tarFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := exporter.TarDir(context.Background(), f, dir); err != nil {
		t.Fatal(err)
	}
	return dir, tarFile
}

func runForTest(t *testing.T, o RunOptions) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code, err := run.Run(context.Background(), o, RunIO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut})
	if err != nil {
		t.Fatalf("Run %s %v: %v (stderr %s)", o.Image, o.Args, err, errOut.String())
	}
	return code, out.String(), errOut.String()
}

func TestRun(t *testing.T) {
	requireRootOverlay(t)
	root := filepath.Join(t.TempDir(), "root")
	hostState(t, root)
	dir, tarFile := writeLayout(t, runTestImage(t))
	entry := "echo"

	// A SysV shared memory segment on the host that the sandbox must not
	// see (busybox has no ipcs: /proc/sysvipc/shm is what ipcs reads).
	shmKey := 0x5eed0000 + os.Getpid()%0xffff
	shmID, err := unix.SysvShmGet(shmKey, 4096, unix.IPC_CREAT|0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.SysvShmCtl(shmID, unix.IPC_RMID, nil)
	hostShm, _ := os.ReadFile("/proc/sysvipc/shm")
	if !strings.Contains(string(hostShm), strconv.Itoa(shmKey)) {
		t.Fatalf("test segment %d not in the host's /proc/sysvipc/shm", shmKey)
	}
	hostMounts, _ := os.ReadFile("/proc/mounts")
	hostName, _ := os.Hostname()

	tests := []struct {
		name     string
		o        RunOptions
		wantCode int
		check    func(t *testing.T, out string)
	}{
		{"default cmd from oci dir", RunOptions{Image: "oci:" + dir}, 0, func(t *testing.T, out string) {
			if out != "default cmd\n" {
				t.Errorf("out %q", out)
			}
		}},
		{"oci-archive, args replace cmd, env workdir user", RunOptions{Image: "oci-archive:" + tarFile,
			Args: []string{"sh", "-c", `echo "$FOO $BAR"; pwd; id -u`}, Env: []string{"BAR=from-flag"}}, 0,
			func(t *testing.T, out string) {
				if out != "from-image from-flag\n/tmp\n0\n" {
					t.Errorf("out %q", out)
				}
			}},
		{"-e overrides, -w and -u", RunOptions{Image: "oci:" + dir, Env: []string{"FOO=over"}, Workdir: "/home/app", User: "app",
			Args: []string{"sh", "-c", `echo "$FOO"; pwd; id -u`}}, 0, func(t *testing.T, out string) {
			if out != "over\n/home/app\n1000\n" {
				t.Errorf("out %q", out)
			}
		}},
		{"--entrypoint drops the image cmd", RunOptions{Image: "oci:" + dir, Entrypoint: &entry, Args: []string{"a", "b"}}, 0,
			func(t *testing.T, out string) {
				if out != "a b\n" {
					t.Errorf("out %q", out)
				}
			}},
		{"exit code", RunOptions{Image: "oci:" + dir, Args: []string{"sh", "-c", "exit 7"}}, 7, nil},
		{"pid namespace", RunOptions{Image: "oci:" + dir, Args: []string{"sh", "-c", "ps aux | wc -l"}}, 0, func(t *testing.T, out string) {
			// header, sh, ps, wc
			if n, _ := strconv.Atoi(strings.TrimSpace(out)); n < 2 || n > 5 {
				t.Errorf("ps aux | wc -l = %q: the host's processes are visible", out)
			}
		}},
		{"mount namespace", RunOptions{Image: "oci:" + dir, Args: []string{"cat", "/proc/mounts"}}, 0, func(t *testing.T, out string) {
			if out == string(hostMounts) || strings.Count(out, "\n") > 30 || !strings.Contains(out, " / overlay ") {
				t.Errorf("/proc/mounts inside:\n%s", out)
			}
		}},
		{"network none", RunOptions{Image: "oci:" + dir, Network: "none", Args: []string{"cat", "/proc/net/dev"}}, 0, func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 3 || !strings.Contains(lines[2], "lo:") {
				t.Errorf("/proc/net/dev with --network none:\n%s", out)
			}
		}},
		{"hostname", RunOptions{Image: "oci:" + dir, Hostname: "sandboxed", Args: []string{"hostname"}}, 0, func(t *testing.T, out string) {
			if out != "sandboxed\n" || out == hostName+"\n" {
				t.Errorf("hostname %q", out)
			}
		}},
		{"ipc namespace", RunOptions{Image: "oci:" + dir, Args: []string{"cat", "/proc/sysvipc/shm"}}, 0, func(t *testing.T, out string) {
			if strings.Contains(out, strconv.Itoa(shmKey)) {
				t.Errorf("the host's shm segment is visible:\n%s", out)
			}
		}},
		// dd's 256 MiB buffer does not fit in 32 MiB: the OOM killer ends it.
		{"memory limit", RunOptions{Image: "oci:" + dir, Memory: 32 << 20, Args: []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"}}, 137, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Root, tt.o.Remove = root, true
			code, out, errOut := runForTest(t, tt.o)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d; stdout %q stderr %q", code, tt.wantCode, out, errOut)
			}
			if tt.check != nil {
				tt.check(t, out)
			}
		})
	}

	t.Run("--rm removes the container, without it stays", func(t *testing.T) {
		count := func() int { return runSnapshots(t, root) }
		if n := count(); n != 0 {
			t.Fatalf("%d containers left by --rm runs", n)
		}
		runForTest(t, RunOptions{Image: "oci:" + dir, Root: root, Args: []string{"true"}})
		if n := count(); n != 1 {
			t.Fatalf("%d containers after a run without --rm, want 1", n)
		}
	})

	t.Run("registry reference", func(t *testing.T) {
		host := registrytest.NewInProcess(t)
		ref := host + "/run/busybox:latest"
		registrytest.Push(t, runTestImage(t), ref)
		code, out, _ := runForTest(t, RunOptions{Image: ref, Root: root, Remove: true, Args: []string{"echo", "pulled"}})
		if code != 0 || out != "pulled\n" {
			t.Errorf("code %d out %q", code, out)
		}
	})

	t.Run("tty", func(t *testing.T) {
		code, out, _ := runForTest(t, RunOptions{Image: "oci:" + dir, Root: root, Remove: true, Tty: true,
			Args: []string{"sh", "-c", `[ -t 0 ] && [ -t 1 ] && echo "tty $TERM"; set -- $(cat /proc/self/stat); echo "tty_nr=$7"`}})
		if code != 0 || !strings.Contains(out, "tty xterm\r\n") || strings.Contains(out, "tty_nr=0") {
			t.Errorf("code %d out %q", code, out)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, o := range []RunOptions{
			{Image: "oci:" + t.TempDir()},
			{Image: "oci-archive:" + filepath.Join(t.TempDir(), "missing.tar")},
			{Image: "oci:" + dir, Network: "bridge"},
		} {
			o.Root, o.Remove = root, true
			if _, err := run.Run(context.Background(), o, RunIO{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}); err == nil {
				t.Errorf("Run %s %v --network %q succeeded", o.Image, o.Args, o.Network)
			}
		}
		// A command that cannot start exits 127, as with docker run.
		var errOut bytes.Buffer
		code, err := run.Run(context.Background(), RunOptions{Image: "oci:" + dir, Args: []string{"/no/such/command"}, Root: root, Remove: true},
			RunIO{Stdout: &bytes.Buffer{}, Stderr: &errOut})
		if err != nil || code != 127 || !strings.Contains(errOut.String(), "/no/such/command") {
			t.Errorf("Run /no/such/command: code %d, err %v, stderr %q; want 127 and the reason", code, err, errOut.String())
		}
	})
}

// TestRunImageNotFound: a name in neither the store nor the registry says
// first that it is not in the local store, then what the pull said.
func TestRunImageNotFound(t *testing.T) {
	o := RunOptions{Image: "127.0.0.1:1/app:typo", Root: t.TempDir(), Pull: "missing"}
	_, err := run.Run(context.Background(), o, RunIO{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
	msg := fmt.Sprint(err)
	i, j := strings.Index(msg, `unable to find image "127.0.0.1:1/app:typo" in the local image store`), strings.Index(msg, "127.0.0.1:1/v2")
	if err == nil || i != 0 || j < i {
		t.Errorf("err = %v, want the local store first, then the pull's error", err)
	}
}

// TestRunInvalidReference: a name outside Docker's grammar is refused
// before the root is touched.
func TestRunInvalidReference(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	_, err := run.Run(context.Background(), RunOptions{Image: "../x", Root: root}, RunIO{Stdout: io.Discard, Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), `image "../x": invalid reference format`) {
		t.Errorf("err = %v, want an invalid reference", err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("the root was created: %v", err)
	}
	if _, err := runCLI(t, "tag", "--root", root, "../x", "../../y"); err == nil || !strings.Contains(err.Error(), `source image "../x": invalid reference format`) {
		t.Errorf("tag err = %v, want an invalid reference", err)
	}
	if _, err := runCLI(t, "tag", "--root", root, "x", "../../y"); err == nil || !strings.Contains(err.Error(), `target image "../../y": invalid reference format`) {
		t.Errorf("tag err = %v, want an invalid reference", err)
	}
	err = Push(context.Background(), root, "plain", RegistryFlags{}, "x", []string{"ok", "../../y"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `push destination "../../y": invalid reference format`) {
		t.Errorf("push err = %v, want an invalid reference", err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("the root was created: %v", err)
	}
}
