package registry

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/registrytest"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestFlakyRegistry pushes and pulls through a proxy in front of the real
// registry that fails one request in four at random (503, 429, a reset
// connection, or a response body cut half-way): every request of a push
// (upload start, chunk, commit, manifest) and of a pull is retried, and
// what arrives has the right digest.
func TestFlakyRegistry(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration test")
	}
	reg := registrytest.StartDistribution(t)
	// Eight tries: a blob's streamed upload, which cannot be sent again
	// alone, is retried whole and each try fails with p=1/4.
	retry := remote.Backoff{Duration: 2 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 8}
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			proxy := registrytest.NewFaultProxy(t, reg, registrytest.Random(seed, 4,
				registrytest.Unavailable, registrytest.TooMany, registrytest.Drop, registrytest.CutBody))
			img := appImage(t, 4)
			ref := fmt.Sprintf("%s/flaky%d:1", proxy.Host, seed)
			c := pushClient(t, Options{Retry: retry})
			d, err := c.Push(context.Background(), img, []string{ref}, PushOptions{})
			if err != nil {
				t.Fatalf("push: %v", err)
			}
			if want, _ := img.Digest(); d.String() != want.String() {
				t.Fatalf("pushed %s, want %s", d, want)
			}
			checkRemote(t, reg+"/"+strings.SplitN(ref, "/", 2)[1], img)
			pushFaults := proxy.Faults()

			// A fresh client and store: everything comes through the proxy.
			c = pushClient(t, Options{Retry: retry})
			r, err := c.Resolve(context.Background(), ref, hostPlatform)
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if r.ManifestDigest != d {
				t.Fatalf("resolved %s, pushed %s", r.ManifestDigest, d)
			}
			layers, err := c.Pull(context.Background(), r)
			if err != nil {
				t.Fatalf("pull: %v", err)
			}
			for _, l := range layers {
				if n, err := c.blobs.Stat(l.Digest); err != nil || n != l.Size {
					t.Errorf("layer %s: stored %d bytes, %v; want %d", l.Digest, n, err, l.Size)
				}
			}
			if pushFaults == 0 || proxy.Faults() == pushFaults {
				t.Errorf("faults: %d in the push, %d in the pull; the test wants some in both", pushFaults, proxy.Faults()-pushFaults)
			}
			t.Logf("%d faults, %d bodies cut", proxy.Faults(), proxy.Cuts())
		})
	}
}

// hungServer is a registry that accepts connections and then never
// answers (trickle false) or answers one byte at a time, every 50ms.
func hungServer(t *testing.T, trickle bool) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				go func() { _, _ = bufio.NewReader(conn).WriteTo(discard{}) }()
				if !trickle {
					<-done
					return
				}
				resp := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat(" ", 100000)
				for i := 0; i < len(resp); i++ {
					select {
					case <-done:
						return
					case <-time.After(50 * time.Millisecond):
					}
					if _, err := conn.Write([]byte{resp[i]}); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestHungRegistry: a registry that never answers or trickles a byte at a
// time fails a pull and a push within two stall windows, with an error
// naming the registry and what was being done.
func TestHungRegistry(t *testing.T) {
	to := Timeouts{Stall: 300 * time.Millisecond, Connect: time.Second, MinBytes: 1024}
	for _, tc := range []struct {
		name    string
		trickle bool
	}{{"silent", false}, {"trickle", true}} {
		t.Run(tc.name, func(t *testing.T) {
			host := hungServer(t, tc.trickle)
			c := pushClient(t, Options{Timeouts: to})
			start := time.Now()
			_, err := c.Resolve(context.Background(), host+"/hung:1", hostPlatform)
			took := time.Since(start)
			var se *OpStalledError
			if !errors.As(err, &se) {
				t.Fatalf("resolve: %v; want a stall error", err)
			}
			if !strings.Contains(err.Error(), "registry "+host+" stalled while") {
				t.Errorf("error %q does not name the registry and the operation", err)
			}
			t.Logf("resolve: %s: %v", took, err)
			if took > 10*to.Stall {
				t.Errorf("resolve gave up after %s, want about %s", took, 2*to.Stall)
			}

			start = time.Now()
			_, err = c.Push(context.Background(), appImage(t, 1), []string{host + "/hung:1"}, PushOptions{})
			took = time.Since(start)
			if err == nil || !strings.Contains(err.Error(), "stalled") || !strings.Contains(err.Error(), host) {
				t.Fatalf("push: %v; want a stall error naming %s", err, host)
			}
			t.Logf("push: %s: %v", took, err)
			if took > 20*to.Stall {
				t.Errorf("push gave up after %s", took)
			}
		})
	}
}

func TestTimeoutsFromEnv(t *testing.T) {
	for _, tc := range []struct {
		stall, connect string
		want           Timeouts
		err            bool
	}{
		{"", "", DefaultTimeouts, false},
		{"45s", "", Timeouts{Connect: DefaultTimeouts.Connect, TLS: DefaultTimeouts.TLS, Stall: 45 * time.Second, MinBytes: DefaultTimeouts.MinBytes}, false},
		{"", "2s", Timeouts{Connect: 2 * time.Second, TLS: DefaultTimeouts.TLS, Stall: DefaultTimeouts.Stall, MinBytes: DefaultTimeouts.MinBytes}, false},
		{"soon", "", Timeouts{}, true},
		{"-1s", "", Timeouts{}, true},
	} {
		t.Setenv(EnvStallTimeout, tc.stall)
		t.Setenv(EnvConnectTimeout, tc.connect)
		got, err := TimeoutsFromEnv()
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("%q/%q: %+v, %v", tc.stall, tc.connect, got, err)
		}
		if tc.err {
			if c := New(Options{Blobs: newStore(t)}); c.err == nil || !strings.Contains(c.err.Error(), EnvStallTimeout) {
				t.Errorf("%q: New accepted it: %v", tc.stall, c.err)
			}
		}
	}
}

// TestStallBody: a body that trickles below the minimum fails with a
// StallError within about a window; one that keeps up is read whole.
func TestStallBody(t *testing.T) {
	to := Timeouts{Stall: 100 * time.Millisecond, MinBytes: 1024}
	trickle := func(chunk int, every time.Duration, total int) io.ReadCloser {
		pr, pw := io.Pipe()
		go func() {
			defer pw.Close()
			for sent := 0; sent < total; sent += chunk {
				time.Sleep(every)
				if _, err := pw.Write(bytes.Repeat([]byte("x"), chunk)); err != nil {
					return
				}
			}
		}()
		return pr
	}
	start := time.Now()
	_, err := io.ReadAll(watchBody(trickle(1, 10*time.Millisecond, 1000), "slow:443", to))
	var se *StallError
	if !errors.As(err, &se) || se.Addr != "slow:443" {
		t.Fatalf("trickling body: %v, want a StallError", err)
	}
	if took := time.Since(start); took > 5*to.Stall {
		t.Errorf("stall noticed after %s", took)
	}
	data, err := io.ReadAll(watchBody(trickle(4096, 20*time.Millisecond, 40960), "fast:443", to))
	if err != nil || len(data) != 40960 {
		t.Fatalf("steady body: %d bytes, %v", len(data), err)
	}
}
