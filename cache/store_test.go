package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

func key(s string) digest.Digest { return digest.FromString(s) }

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustLoad(t *testing.T, s *Store, k digest.Digest) (string, bool) {
	t.Helper()
	id, ok, err := s.Load(k)
	if err != nil {
		t.Fatal(err)
	}
	return id, ok
}

func TestKeysPersist(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir)
	if _, ok := mustLoad(t, s, key("a")); ok {
		t.Fatal("empty store hit")
	}
	if err := s.Save(key("a"), "res-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(key("b"), "res-b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(key("a"), "res-a2"); err != nil { // replaces
		t.Fatal(err)
	}
	if err := s.Delete(key("b")); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2 := openStore(t, dir)
	if id, ok := mustLoad(t, s2, key("a")); !ok || id != "res-a2" {
		t.Fatalf("a = %q %v, want res-a2", id, ok)
	}
	if _, ok := mustLoad(t, s2, key("b")); ok {
		t.Fatal("deleted key b still there")
	}
	if err := s2.Save("not-a-digest", "x"); err == nil {
		t.Fatal("invalid key accepted")
	}
	for _, sub := range []string{"content", "keys", "meta"} {
		if _, err := os.Stat(filepath.Join(dir, sub)); err != nil {
			t.Errorf("layout: %v", err)
		}
	}
}

// TestKeysTwoProcesses uses two Stores on one directory: each has its own
// files and flock descriptions, as two builder processes would.
func TestKeysTwoProcesses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := openStore(t, dir), openStore(t, dir)
	const n = 50
	var wg sync.WaitGroup
	for w, s := range []*Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if err := s.Save(key(fmt.Sprintf("%d-%d", w, i)), fmt.Sprintf("id%d-%d", w, i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for _, s := range []*Store{a, b, openStore(t, dir)} {
		for w := range 4 {
			for i := range n {
				if id, ok := mustLoad(t, s, key(fmt.Sprintf("%d-%d", w, i))); !ok || id != fmt.Sprintf("id%d-%d", w, i) {
					t.Fatalf("key %d/%d = %q %v", w, i, id, ok)
				}
			}
		}
	}

	// Compaction by one is followed by the other, and writes after it land
	// in the new log.
	removed, err := a.Prune(func(id string) bool { return !strings.HasPrefix(id, "id0") })
	if err != nil {
		t.Fatal(err)
	}
	if removed != n {
		t.Fatalf("pruned %d, want %d", removed, n)
	}
	if _, ok := mustLoad(t, b, key("0-1")); ok {
		t.Fatal("other store still sees a pruned key")
	}
	if err := b.Save(key("after"), "x"); err != nil {
		t.Fatal(err)
	}
	if id, ok := mustLoad(t, a, key("after")); !ok || id != "x" {
		t.Fatalf("write after compaction lost: %q %v", id, ok)
	}
	if id, ok := mustLoad(t, a, key("1-1")); !ok || id != "id1-1" {
		t.Fatalf("kept key lost by compaction: %q %v", id, ok)
	}
}

func TestKeysTornTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.Save(key("a"), "res-a"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// A writer crashed in the middle of a line.
	log := filepath.Join(dir, "keys", "log")
	f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"k":"sha256:0123`)
	f.Close()

	s = openStore(t, dir)
	if id, ok := mustLoad(t, s, key("a")); !ok || id != "res-a" {
		t.Fatalf("a = %q %v", id, ok)
	}
	if err := s.Save(key("b"), "res-b"); err != nil {
		t.Fatal(err)
	}
	s3 := openStore(t, dir)
	for k, want := range map[string]string{"a": "res-a", "b": "res-b"} {
		if id, ok := mustLoad(t, s3, key(k)); !ok || id != want {
			t.Fatalf("%s = %q %v, want %s", k, id, ok, want)
		}
	}
	data, _ := os.ReadFile(log)
	if strings.Contains(string(data), "0123") {
		t.Fatalf("torn line not cut: %s", data)
	}
	// A damaged complete line is skipped, not fatal.
	os.WriteFile(log, append(data, []byte("garbage\n")...), 0o600)
	s4 := openStore(t, dir)
	if _, ok := mustLoad(t, s4, key("b")); !ok {
		t.Fatal("damaged line broke the store")
	}
}

func TestExplainMiss(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir())
	in := func(name, d string, content bool) KeyInput {
		return KeyInput{Name: name, Digest: key(d), Content: content}
	}
	saved := []KeyInfo{
		{Key: key("k1"), Name: "[2/3] COPY app.go /src/", Op: key("copy"), Inputs: []KeyInput{in("[1/3] FROM alpine", "base", false), in("context", "app-v1", true)}},
		{Key: key("k2"), Name: "[3/3] RUN go build", Op: key("run"), Inputs: []KeyInput{in("[2/3] COPY app.go /src/", "k1", false)}},
		{Key: key("k3"), Name: "[1/2] RUN make", Op: key("make"), Inputs: []KeyInput{in("base", "base", false)}},
		{Key: key("k4"), Name: "stage RUN x", Op: key("x-old"), Inputs: []KeyInput{in("base", "base", false), in("other", "o1", false)}},
	}
	for i, info := range saved {
		if err := s.SaveKey(info, fmt.Sprint("id", i)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		miss KeyInfo
		want string
	}{
		{"content of a COPY source", KeyInfo{Key: key("m1"), Name: "[2/3] COPY app.go /src/", Op: key("copy"),
			Inputs: []KeyInput{in("[1/3] FROM alpine", "base", false), in("context", "app-v2", true)}},
			"cache miss: content of input 1 (context) changed"},
		{"previous step changed", KeyInfo{Key: key("m2"), Name: "[3/3] RUN go build", Op: key("run"),
			Inputs: []KeyInput{in("[2/3] COPY app.go /src/", "m1", false)}},
			"cache miss: input 0 ([2/3] COPY app.go /src/) changed"},
		{"command changed", KeyInfo{Key: key("m3"), Name: "[1/2] RUN make all", Op: key("make-all"),
			Inputs: []KeyInput{in("base", "base", false)}},
			`cache miss: this step is new on these inputs (the last step built on them was "[1/2] RUN make")`},
		{"same name, new definition", KeyInfo{Key: key("m4"), Name: "stage RUN x", Op: key("x-new"),
			Inputs: []KeyInput{in("base", "base", false), in("other", "o1", false)}},
			"cache miss: the step itself changed (command, arguments or options); its inputs are the same"},
		{"same name, input changed", KeyInfo{Key: key("m5"), Name: "stage RUN x", Op: key("x-new"),
			Inputs: []KeyInput{in("base", "base", false), in("other", "o2", false)}},
			"cache miss: input 1 (other) changed"},
		{"never built", KeyInfo{Key: key("m6"), Name: "new", Op: key("new"), Inputs: []KeyInput{in("b", "zzz", false)}},
			"cache miss: this step was not built before"},
		{"inputs count", KeyInfo{Key: key("m7"), Name: "[1/2] RUN make", Op: key("make"), Inputs: nil},
			"cache miss: the number of inputs changed (0, was 1)"},
		{"key present", saved[2], "cache miss: the cached result is gone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := s.ExplainMiss(tc.miss); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	// Infos persist.
	s2 := openStore(t, s.Dir())
	if got := s2.ExplainMiss(tests[0].miss); got != tests[0].want {
		t.Errorf("after reopen: %q", got)
	}
}

func TestMetaStore(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir())
	m := s.Metadata()
	type rec struct {
		Snapshot string `json:"snapshot"`
		N        int    `json:"n"`
	}
	ids := []string{"simple", "sha256:abc/def", ".hidden", "spaces and %percent", "ünï"}
	for i, id := range ids {
		if err := m.Put(id, rec{Snapshot: id, N: i}); err != nil {
			t.Fatalf("put %q: %v", id, err)
		}
	}
	if err := m.Put("simple", rec{Snapshot: "simple", N: 100}); err != nil {
		t.Fatal(err)
	}
	var r rec
	if err := m.Get("simple", &r); err != nil || r.N != 100 {
		t.Fatalf("get: %+v %v", r, err)
	}
	if err := m.Get("missing", &r); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if err := m.Delete("spaces and %percent"); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete("spaces and %percent"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := m.Put("", 1); err == nil {
		t.Fatal("empty id accepted")
	}
	if err := m.Put(strings.Repeat("/", 100), 1); err == nil {
		t.Fatal("too long id accepted")
	}
	// A leftover temp file is not a record.
	os.WriteFile(filepath.Join(m.dir, tmpPrefix+"x"), []byte("{"), 0o600)
	got := map[string]int{}
	err := m.Walk(func(id string, data json.RawMessage) error {
		var r rec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		if r.Snapshot != id {
			t.Errorf("walk: id %q holds %q", id, r.Snapshot)
		}
		got[id] = r.N
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"simple": 100, "sha256:abc/def": 1, ".hidden": 2, "ünï": 4}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("walk = %v, want %v", got, want)
	}
	stop := errors.New("stop")
	if err := m.Walk(func(string, json.RawMessage) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("walk error: %v", err)
	}
}

func TestEscapeID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"a", "sha256:0f", "../x", ".", "..", "a/b\x00c", "%41"} {
		e := escapeID(id)
		if strings.ContainsAny(e, "/\x00:") || e == "." || e == ".." || strings.HasPrefix(e, ".") {
			t.Errorf("escape(%q) = %q: unsafe", id, e)
		}
		if back, ok := unescapeID(e); !ok || back != id {
			t.Errorf("unescape(%q) = %q %v, want %q", e, back, ok, id)
		}
	}
	for _, bad := range []string{"%", "%4", "%zz"} {
		if _, ok := unescapeID(bad); ok {
			t.Errorf("unescape(%q) accepted", bad)
		}
	}
}

func TestBlobVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := OpenBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, n, err := s.Put(ctx, strings.NewReader("hello blob"), "", -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(d, n); err != nil {
		t.Fatalf("good blob: %v", err)
	}
	if err := s.Verify(d, n+1); err == nil || errors.Is(err, ErrCorrupt) {
		t.Errorf("wrong expected size: %v, want a size error that is not ErrCorrupt", err)
	}
	fi, err := os.Stat(s.Path(d))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Stamped(d, fi) {
		t.Error("a blob just stored is not stamped as verified")
	}
	// Same size, other bytes: only a hash tells.
	p := s.Path(d)
	os.Chmod(p, 0o600)
	if err := os.WriteFile(p, []byte("hellO blob"), 0o444); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || s.Stamped(d, fi) {
		t.Errorf("a rewritten blob is still stamped as verified (%v)", err)
	}
	if err := s.Verify(d, n); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt blob: %v, want ErrCorrupt", err)
	}
	if _, err := s.Stat(d); !errors.Is(err, ErrNotFound) {
		t.Errorf("corrupt blob still there: %v", err)
	}
	if err := s.Verify(d, n); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed blob: %v, want ErrNotFound", err)
	}
	// Stored again, it verifies.
	if _, _, err := s.Put(ctx, strings.NewReader("hello blob"), d, n); err != nil {
		t.Fatal(err)
	}
	d2, _, _ := s.Put(ctx, strings.NewReader("other"), "", -1)
	os.Chmod(s.Path(d2), 0o600)
	os.WriteFile(s.Path(d2), []byte("OTHER"), 0o444)
	bad, err := s.VerifyAll(nil)
	if err != nil || len(bad) != 1 || bad[0] != d2 {
		t.Errorf("VerifyAll = %v, %v; want [%s]", bad, err, d2)
	}
}

func TestTouchRecordsLastUse(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := digest.FromString("k")
	if err := s.Save(k, "r1"); err != nil {
		t.Fatal(err)
	}
	entry := func() KeyEntry {
		es, _ := s.Entries()
		for _, e := range es {
			if e.Key == k {
				return e
			}
		}
		t.Fatal("key gone")
		return KeyEntry{}
	}
	// Saved just now: a use within the granularity is not recorded again.
	if err := s.Touch([]digest.Digest{k}); err != nil {
		t.Fatal(err)
	}
	if e := entry(); !e.Used.IsZero() {
		t.Errorf("use recorded right after the save: %v", e.Used)
	}
	// Saved long ago: the use is recorded and survives compaction.
	s.keys.mu.Lock()
	s.keys.entries[k].time -= int64(time.Hour)
	s.keys.mu.Unlock()
	if err := s.keys.append(keyRecord{Key: k, ID: "r1", Time: now() - int64(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch([]digest.Digest{k}); err != nil {
		t.Fatal(err)
	}
	e := entry()
	if time.Since(e.Used) > time.Minute || !e.LastUsed().Equal(e.Used) {
		t.Errorf("last use %v (saved %v)", e.Used, e.Time)
	}
	if _, err := s.DropKeys(map[digest.Digest]bool{digest.FromString("other"): true}); err != nil {
		t.Fatal(err)
	}
	if e2 := entry(); !e2.Used.Equal(e.Used) {
		t.Errorf("last use after compaction %v, want %v", e2.Used, e.Used)
	}
}
