package main

// Ports of BuildKit's dockerfile_runnetwork_test.go that reach a server on
// the host's loopback, whose port is only known when the test runs.

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// echoServer accepts connections on the host's loopback and writes msg to
// each; it returns the port.
func echoServer(t *testing.T, msg string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(msg))
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// TestBuildKitRunNetwork ports testRunHostNetwork and testRunGlobalNetwork:
// RUN --network=host reaches the host's loopback when network.host is
// granted and fails the build when it is not; --network host makes it the
// default of every RUN, and RUN --network=none still cannot connect.
// (busybox nc has no -z: "! nc -w 2" fails on a refused connection.)
func TestBuildKitRunNetwork(t *testing.T) {
	requireRootOverlay(t)
	e := newNamedEnv(t)
	port := echoServer(t, "foo")
	hostDF := fmt.Sprintf("ARG BASE\nFROM $BASE\nRUN --network=host nc 127.0.0.1 %d | grep foo\n", port)
	t.Run("host granted", func(t *testing.T) {
		if progress, err := e.build(t, hostDF, nil, BuildOptions{Sandbox: SandboxOptions{Allow: []string{"network.host"}}}); err != nil {
			t.Fatalf("build: %v\nprogress:\n%s", err, progress)
		}
	})
	t.Run("host denied", func(t *testing.T) {
		progress, err := e.build(t, hostDF, nil, BuildOptions{})
		if err == nil || !strings.Contains(progress+err.Error(), "network.host") {
			t.Fatalf("error %v, want one naming the network.host entitlement\nprogress:\n%s", err, progress)
		}
	})
	t.Run("global host", func(t *testing.T) {
		df := fmt.Sprintf("ARG BASE\nFROM $BASE\nRUN nc 127.0.0.1 %d | grep foo\nRUN --network=none ! nc -w 2 127.0.0.1 %d\n", port, port)
		if progress, err := e.build(t, df, nil, BuildOptions{Sandbox: SandboxOptions{Network: "host"}}); err != nil {
			t.Fatalf("build: %v\nprogress:\n%s", err, progress)
		}
	})
}
