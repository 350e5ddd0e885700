package fileop

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/llb"
	digest "github.com/opencontainers/go-digest"
)

// Hasher returns the content digest of the regular file at path, whose
// Lstat info is fi. Implementations cache digests by stat data so unchanged
// files are not read again (cache.FileHashCache).
type Hasher interface {
	Sum(path string, fi os.FileInfo) (digest.Digest, error)
}

// Checksum returns the content digest of exactly what Copy c reads from in:
// the selected paths (wildcards expanded, directory contents, followed
// symlinks, in.Excludes and c.ExcludePatterns applied) with their relative
// names, file types, mode bits, owners (unless in.Local, where copies are
// owned by 0:0 or the chown user anyway), symlink targets, hard links and
// file contents. Times never count. It fails like the copy would when a
// source is missing.
func Checksum(ctx context.Context, in Input, c *llb.Copy, hc Hasher) (digest.Digest, error) {
	s, err := openSource(in)
	if err != nil {
		return "", err
	}
	excl, err := fsutil.NewPatternMatcher(c.ExcludePatterns)
	if err != nil {
		return "", fmt.Errorf("exclude patterns: %w", err)
	}
	srcs, err := sources(s, c, excl)
	if err != nil {
		return "", err
	}
	w := newTreeHasher(ctx, s, excl, hc)
	for i, spec := range c.SrcPaths {
		w.header("spec", strconv.Itoa(i), spec)
	}
	for _, src := range srcs {
		w.header("source", src.spec, src.named, src.parents)
		if c.Parents && src.parents != "" {
			// The recreated parent dirs carry the source dirs' metadata.
			srel := src.pivotRel
			dirs := splitSlash(src.parents)
			for _, d := range dirs[:len(dirs)-1] {
				srel = path.Join(srel, d)
				fi, err := os.Lstat(s.hostPath(srel))
				if err != nil {
					return "", fmt.Errorf("source %q: %w", src.spec, unwrapPath(err))
				}
				if err := w.record("parent:"+srel, srel, s.hostPath(srel), fi); err != nil {
					return "", err
				}
			}
		}
		top := src.fi.IsDir() && c.DirContentsOnly && !c.Parents
		if err := w.walk(s.hostPath(src.rel), src.rel, "", src.fi, !top); err != nil {
			return "", err
		}
	}
	return w.sum()
}

// TreeDigest is the digest of a whole input (a local source used without a
// selector), in the same canonical form as Checksum, over the whole tree
// filtered by in.Excludes.
func TreeDigest(ctx context.Context, in Input, hc Hasher) (digest.Digest, error) {
	s, err := openSource(in)
	if err != nil {
		return "", err
	}
	w := newTreeHasher(ctx, s, nil, hc)
	w.header("tree")
	if s.root == "" {
		return w.sum()
	}
	fi, err := os.Lstat(s.root)
	if err != nil {
		return "", fmt.Errorf("tree digest of %s: %w", s.root, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("tree digest of %s: not a directory", s.root)
	}
	if err := w.walk(s.root, "", "", fi, false); err != nil {
		return "", err
	}
	return w.sum()
}

func splitSlash(p string) []string { return strings.Split(p, "/") }

// treeHasher writes the canonical records of a tree into a sha256. The
// contents of a local context's files are hashed on a few goroutines while
// the walk goes on; the records still go into the sha256 in walk order
// (lines is the window of records not written yet).
type treeHasher struct {
	ctx    context.Context
	s      *source
	excl   *fsutil.PatternMatcher
	hc     Hasher
	h      hash.Hash
	inodes map[inodeKey]string
	lines  []*hashLine
	sem    chan struct{}
	err    error
}

// hashLine is one record; done (when not nil) closes once its content
// digest (the last field) is known.
type hashLine struct {
	fields []string
	done   chan struct{}
	err    error
}

// hashWindow bounds the records waiting for their content digests.
const hashWindow = 256

func newTreeHasher(ctx context.Context, s *source, excl *fsutil.PatternMatcher, hc Hasher) *treeHasher {
	if hc == nil {
		hc = NewMemHasher()
	}
	w := &treeHasher{ctx: ctx, s: s, excl: excl, hc: hc, h: sha256.New(), inodes: map[inodeKey]string{}}
	if s.local {
		// Only a local context is a host path every thread sees; a
		// snapshot is mounted in the calling thread's namespace alone.
		w.sem = make(chan struct{}, poolWorkers())
	}
	return w
}

func (w *treeHasher) header(fields ...string) { w.push(&hashLine{fields: fields}) }

// hashFile queues the record fields (the last one left for the digest)
// of the regular file host (root-relative rel) and hashes it on another
// goroutine.
func (w *treeHasher) hashFile(rel, host string, fi os.FileInfo, fields []string) error {
	if w.sem == nil {
		d, err := w.hc.Sum(host, fi)
		if err != nil {
			return hashError(rel, err)
		}
		fields[len(fields)-1] = d.String()
		w.header(fields...)
		return w.err
	}
	l := &hashLine{fields: fields, done: make(chan struct{})}
	w.sem <- struct{}{}
	go func() {
		defer func() { <-w.sem; close(l.done) }()
		d, err := w.hc.Sum(host, fi)
		if err != nil {
			l.err = hashError(rel, err)
			return
		}
		l.fields[len(l.fields)-1] = d.String()
	}()
	w.push(l)
	return w.err
}

// hashError names the file of a failed Sum once, by its root-relative
// path (the path in the context, not on the host): "open d/f: permission
// denied", as BuildKit's "open PATH: permission denied" for a context file
// it cannot read.
func hashError(rel string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return &os.PathError{Op: pe.Op, Path: rel, Err: pe.Err}
	}
	return fmt.Errorf("hashing %s: %w", rel, err)
}

func (w *treeHasher) push(l *hashLine) {
	w.lines = append(w.lines, l)
	for len(w.lines) > hashWindow {
		w.writeLine()
	}
}

// writeLine writes the oldest record, once its digest is known.
func (w *treeHasher) writeLine() {
	l := w.lines[0]
	w.lines = w.lines[1:]
	if l.done != nil {
		<-l.done
	}
	if l.err != nil && w.err == nil {
		w.err = l.err
	}
	for _, f := range l.fields {
		io.WriteString(w.h, strconv.Quote(f))
		io.WriteString(w.h, " ")
	}
	io.WriteString(w.h, "\n")
}

func (w *treeHasher) sum() (digest.Digest, error) {
	for len(w.lines) > 0 {
		w.writeLine()
	}
	if w.err != nil {
		return "", w.err
	}
	return digest.NewDigest(digest.SHA256, w.h), nil
}

// walk records the entry at host (root-relative rel, comp relative to the
// selected source) when self is set, and its kept descendants in sorted
// order.
func (w *treeHasher) walk(host, rel, comp string, fi os.FileInfo, self bool) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if self {
		if err := w.record(comp, rel, host, fi); err != nil {
			return err
		}
	}
	if !fi.IsDir() {
		return nil
	}
	return keptChildren(w.s, w.excl, host, rel, comp, func(chost, crel, ccomp string, cfi os.FileInfo) error {
		return w.walk(chost, crel, ccomp, cfi, true)
	})
}

// emptyDigest is the content digest of an empty file.
const emptyDigest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// record writes one entry: name, type, mode bits, owner, and the symlink
// target, device numbers, hard link or content digest. rel is the entry's
// root-relative path, for errors.
func (w *treeHasher) record(name, rel, host string, fi os.FileInfo) error {
	m := fi.Mode()
	st, _ := fi.Sys().(*syscall.Stat_t)
	var typ, extra string
	perm := fsutil.UnixMode(m)
	switch {
	case m.IsDir():
		typ = "dir"
	case m.IsRegular():
		typ = "file"
		if st != nil && st.Nlink > 1 {
			k := inodeKey{uint64(st.Dev), st.Ino}
			if prev, ok := w.inodes[k]; ok {
				typ, extra = "hardlink", prev
				break
			}
			w.inodes[k] = name
		}
		return w.hashFile(rel, host, fi, []string{name, typ, strconv.FormatUint(uint64(perm), 8), w.owner(st), ""})
	case m&os.ModeSymlink != 0:
		typ, perm = "symlink", 0
		t, err := os.Readlink(host)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", name, unwrapPath(err))
		}
		extra = t
	case m&os.ModeNamedPipe != 0:
		typ = "fifo"
	case m&os.ModeDevice != 0:
		typ = "block"
		if m&os.ModeCharDevice != 0 {
			typ = "char"
		}
		if st != nil {
			extra = strconv.FormatUint(st.Rdev, 10)
		}
	case m&os.ModeSocket != 0 && w.s.local:
		// Copied as an empty regular file (see copier.copy).
		typ, extra = "file", emptyDigest
	default:
		return nil // sockets of a stage are not copied
	}
	w.header(name, typ, strconv.FormatUint(uint64(perm), 8), w.owner(st), extra)
	return w.err
}

// owner is the owner field of a record: "-" for a local context, whose
// copies are owned by 0:0 or the chown user anyway.
func (w *treeHasher) owner(st *syscall.Stat_t) string {
	if w.s.local || st == nil {
		return "-"
	}
	return strconv.FormatUint(uint64(st.Uid), 10) + ":" + strconv.FormatUint(uint64(st.Gid), 10)
}

// MemHasher is an in-memory Hasher: it remembers the digest of each path
// with the stat data it had (size, mtime, ctime, inode, device) and reads a
// file again only when those changed. It is safe for concurrent use.
type MemHasher struct {
	mu      sync.Mutex
	entries map[string]memEntry
	reads   int
}

type memEntry struct {
	size, mtime, ctime int64
	ino, dev           uint64
	d                  digest.Digest
}

// NewMemHasher returns an empty MemHasher.
func NewMemHasher() *MemHasher {
	return &MemHasher{entries: map[string]memEntry{}}
}

// Reads returns how many files MemHasher has read.
func (m *MemHasher) Reads() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads
}

// Sum implements Hasher.
func (m *MemHasher) Sum(p string, fi os.FileInfo) (digest.Digest, error) {
	e := memEntry{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.ctime = st.Ctim.Nano()
		e.ino, e.dev = st.Ino, uint64(st.Dev)
	}
	m.mu.Lock()
	if c, ok := m.entries[p]; ok && c.size == e.size && c.mtime == e.mtime && c.ctime == e.ctime && c.ino == e.ino && c.dev == e.dev {
		m.mu.Unlock()
		return c.d, nil
	}
	m.mu.Unlock()
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	e.d = digest.NewDigest(digest.SHA256, h)
	m.mu.Lock()
	m.entries[p] = e
	m.reads++
	m.mu.Unlock()
	return e.d, nil
}
