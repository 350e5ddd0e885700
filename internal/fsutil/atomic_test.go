package fsutil

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestWriteFileAtomic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	if err := WriteFileAtomic(p, 0o640, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, 0o640, []byte("two")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "two" {
		t.Fatalf("content %q, %v; want two", b, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	// A failed write leaves the old file and no temp file.
	boom := errors.New("boom")
	err = WriteFileAtomicFunc(p, 0o640, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Errorf("a failed write changed the file to %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %v, want only f.json", entries)
	}
}

// writeString writes s to path with WriteOutputFunc.
func writeString(path, s string) error {
	return WriteOutputFunc(path, func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	})
}

// dirNames lists dir's entries by name.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// checkOnlyOutput checks that dir holds img.tar with content want, and no
// temp file.
func checkOnlyOutput(t *testing.T, dir, want string) {
	t.Helper()
	if names := dirNames(t, dir); !slices.Equal(names, []string{"img.tar"}) {
		t.Errorf("dir holds %q, want only img.tar", names)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "img.tar")); string(b) != want {
		t.Errorf("img.tar holds %q, want %q", b, want)
	}
}

func TestWriteOutputRemovesDeadTemp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "img.tar")
	// As a writer killed mid-write leaves it: nobody holds it locked.
	if err := os.WriteFile(filepath.Join(dir, ".tmp-img.tar-1234567890"), []byte("half a tarball"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeString(out, "image"); err != nil {
		t.Fatal(err)
	}
	checkOnlyOutput(t, dir, "image")
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("img.tar: %v, %v; want mode 0644", fi, err)
	}
}

func TestWriteOutputKeepsLockedTemp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "img.tar")
	live := filepath.Join(dir, ".tmp-img.tar-42")
	if err := os.WriteFile(live, []byte("being written"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A live writer: flock locks belong to an open file description, so
	// this one, opened on its own, conflicts with the sweep's.
	f, err := os.Open(live)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if err := writeString(out, "image"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(live); err != nil || string(b) != "being written" {
		t.Fatalf("live writer's temp: %q, %v; want it kept", b, err)
	}
	// Once its writer is gone, the next write takes it.
	f.Close()
	if err := writeString(out, "image 2"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(live); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp of a dead writer kept: %v", err)
	}
}

func TestWriteOutputKeepsLookalikes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "img.tar")
	files := []string{
		".tmp-img.tar-abc",         // not os.CreateTemp's digits
		".tmp-img.tar-12a",         //
		".tmp-img.tar-0123",        // CreateTemp writes no leading zero
		".tmp-img.tar-99999999999", // nor more than a uint32
		".tmp-img.tar-",            //
		".tmp-img.tar-1-2",         //
		".tmp-img.tar.gz-123",      // another output's
		".tmp-other.tar-123",       //
		"tmp-img.tar-123",          //
		"target",                   // what the link below points to
	}
	for _, name := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("target", filepath.Join(dir, ".tmp-img.tar-123")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, ".tmp-img.tar-77"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Opened, a FIFO would hang the write.
	if err := unix.Mkfifo(filepath.Join(dir, ".tmp-img.tar-5"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := dirNames(t, dir)
	if err := writeString(out, "image"); err != nil {
		t.Fatal(err)
	}
	after := dirNames(t, dir)
	want := slices.Sorted(slices.Values(append(before, "img.tar")))
	if !slices.Equal(after, want) {
		t.Errorf("dir holds %q, want %q", after, want)
	}
	for _, name := range files {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != name {
			t.Errorf("%s: %q, %v; want it untouched", name, b, err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dir, ".tmp-img.tar-123")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlink: %v, %v; want it untouched", fi, err)
	}
}

// TestWriteOutputConcurrent writes one path from many goroutines at once,
// each sweeping the others' temp files while they write them: every write
// must succeed, and none may leave a temp file.
func TestWriteOutputConcurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "img.tar")
	var wg sync.WaitGroup
	errs := make(chan error, 8*20)
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				errs <- WriteOutputFunc(out, func(w io.Writer) error {
					if _, err := fmt.Fprintf(w, "%d-%d", g, i); err != nil {
						return err
					}
					runtime.Gosched() // let others sweep while this temp is open
					return nil
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"img.tar"}) {
		t.Errorf("dir holds %q, want only img.tar", names)
	}
}

// TestKilledWriterHelper is the child of TestWriteOutputAfterKill: it
// starts writing FSUTIL_KILLED_WRITER, says so, and waits to be killed.
func TestKilledWriterHelper(t *testing.T) {
	out := os.Getenv("FSUTIL_KILLED_WRITER")
	if out == "" {
		t.Skip("helper process only")
	}
	WriteOutputFunc(out, func(w io.Writer) error {
		w.Write(bytes.Repeat([]byte("layer"), 1<<16))
		os.Stdout.WriteString("writing\n")
		time.Sleep(time.Minute)
		return errors.New("not killed")
	})
}

func TestWriteOutputAfterKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "img.tar")
	cmd, stdout := startChild(t, "TestKilledWriterHelper", "FSUTIL_KILLED_WRITER="+out)
	defer cmd.Wait()
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "writing\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	temps, _ := filepath.Glob(filepath.Join(dir, ".tmp-img.tar-*"))
	if len(temps) != 1 {
		t.Fatalf("temp files %q while the child writes, want one", temps)
	}
	// The child is alive: its temp file stays.
	if err := writeString(out, "one"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(temps[0]); err != nil {
		t.Fatalf("temp file of a live writer in another process removed: %v", err)
	}

	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Stat(temps[0]); err != nil {
		t.Fatalf("no temp file left by the killed writer (%v): the test proves nothing", err)
	}
	if err := writeString(out, "two"); err != nil {
		t.Fatal(err)
	}
	checkOnlyOutput(t, dir, "two")
}

// TestRemoveDeadTemps sweeps the dead temps of every name in a directory
// and nothing else.
func TestRemoveDeadTemps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{".tmp-index.json-17", ".tmp-abc-1-2", "keep", ".tmp--5", ".tmp-x-0", ".tmp-x-01", ".tmp-x-y", "x.tmp-a-1"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	RemoveDeadTemps(dir)
	if got, want := dirNames(t, dir), []string{".tmp--5", ".tmp-x-01", ".tmp-x-y", "keep", "x.tmp-a-1"}; !slices.Equal(got, want) {
		t.Errorf("left %q, want %q", got, want)
	}
}

// startChild starts this test binary running only the helper test with
// env added, and returns it and its standard output.
func startChild(t *testing.T, test, env string) (*exec.Cmd, io.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdout
}

// TestWriteErrorsNameThePath: a failed write names the file the caller
// asked for, never the temp file that stood for it.
func TestWriteErrorsNameThePath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	isDir := filepath.Join(dir, "out.tar")
	if err := os.Mkdir(isDir, 0o755); err != nil {
		t.Fatal(err)
	}
	full := errors.New("disk full")
	for _, tc := range []struct {
		path  string
		write func(io.Writer) error
		want  string
	}{
		{isDir, nil, "writing " + isDir + ": is a directory"},
		{filepath.Join(dir, "missing", "x.json"), nil, "writing " + filepath.Join(dir, "missing", "x.json") + ": no such file or directory"},
		{filepath.Join(dir, "ro.json"), func(w io.Writer) error {
			_, err := w.(*os.File).Seek(0, 42) // an error that names the temp
			return err
		}, "writing " + filepath.Join(dir, "ro.json") + ": seek " + filepath.Join(dir, "ro.json") + ": "},
		{filepath.Join(dir, "full.json"), func(io.Writer) error { return full }, "writing " + filepath.Join(dir, "full.json") + ": disk full"},
	} {
		write := tc.write
		if write == nil {
			write = func(w io.Writer) error { _, err := io.WriteString(w, "x"); return err }
		}
		err := ReplaceFileFunc(tc.path, 0o644, write)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), tmpPrefix) {
			t.Errorf("%s: %v, want %q", tc.path, err, tc.want)
		}
	}
	if err := ReplaceFileFunc(filepath.Join(dir, "full.json"), 0o644, func(io.Writer) error { return full }); !errors.Is(err, full) {
		t.Errorf("the write's error is not kept: %v", err)
	}
}

func TestCheckOutput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"file ok", CheckOutputFile(file), ""},
		{"file new", CheckOutputFile(filepath.Join(dir, "a", "b", "img.tar")), ""},
		{"file is a dir", CheckOutputFile(dir), dir + " is a directory"},
		{"file under a file", CheckOutputFile(filepath.Join(file, "x", "img.tar")), filepath.Join(file, "x", "img.tar") + ": " + file + " is not a directory"},
		{"dir ok", CheckOutputDir(dir), ""},
		{"dir new", CheckOutputDir(filepath.Join(dir, "new")), ""},
		{"dir is a file", CheckOutputDir(file), file + " exists and is not a directory"},
		{"dir under a file", CheckOutputDir(filepath.Join(file, "out")), filepath.Join(file, "out") + ": " + file + " is not a directory"},
	} {
		if tc.want == "" && tc.err != nil || tc.want != "" && (tc.err == nil || tc.err.Error() != tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, tc.err, tc.want)
		}
	}
}

// TestWriteOutputThrough: an output path that is a symlink, a FIFO or a
// device is written through, as buildx writes; none is replaced.
func TestWriteOutputThrough(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	real, link := filepath.Join(dir, "real.tar"), filepath.Join(dir, "link.tar")
	if err := os.WriteFile(real, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.tar", link); err != nil {
		t.Fatal(err)
	}
	if err := writeString(link, "new"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(real); string(b) != "new" {
		t.Errorf("the link's target holds %q, want new", b)
	}
	// A link to a file not there yet makes it, as open(2) would.
	dangling := filepath.Join(dir, "dangling.iid")
	if err := os.Symlink("sub/made.iid", dangling); err != nil {
		t.Fatal(err)
	}
	if err := writeString(dangling, "id"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sub", "made.iid")); string(b) != "id" {
		t.Errorf("the dangling link's target holds %q, want id", b)
	}
	if fi, err := os.Lstat(dangling); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the dangling link was replaced: %v %v", fi.Mode(), err)
	}

	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- string(b)
	}()
	if err := writeString(fifo, "through the pipe"); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "through the pipe" {
			t.Errorf("the FIFO's reader got %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing was written to the FIFO")
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", fi.Mode(), err)
	}

	// A null device of its own: a broken write must not replace the
	// machine's /dev/null.
	null := filepath.Join(dir, "null")
	if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Logf("no device node (%v): the device case is not checked", err)
		return
	}
	if err := writeString(null, "discarded"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(null); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("the device was replaced: %v %v", fi.Mode(), err)
	}
	if left := dirNames(t, dir); !slices.Equal(left, []string{"dangling.iid", "fifo", "link.tar", "null", "real.tar", "sub"}) {
		t.Errorf("left %q", left)
	}
}
