package snapshot

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors. Implementations wrap them.
var (
	ErrNotFound      = errors.New("snapshot not found")
	ErrAlreadyExists = errors.New("snapshot already exists")
)

// Kind is the state of a snapshot.
type Kind int

// Kinds.
const (
	KindActive Kind = iota + 1
	KindView
	KindCommitted
)

// Mount is one mount(2) call that makes a snapshot's tree: overlay with
// lowerdir/upperdir/workdir options, or a bind mount of a directory.
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// Info describes a snapshot.
type Info struct {
	Name    string
	Parent  string
	Kind    Kind
	Created time.Time
}

// Snapshotter keeps filesystem trees as a chain of snapshots, in the
// vocabulary of containerd:
//
//   - Prepare(key, parent) makes an active (writable) snapshot on top of the
//     committed snapshot parent ("" for an empty tree) and returns the mounts
//     that assemble it.
//   - View(key, parent) is the read-only variant; a view is removed, never
//     committed.
//   - Commit(name, key) turns active snapshot key into committed snapshot
//     name; key is gone afterwards. Committed snapshots are immutable and can
//     be parents.
//   - Remove(key) deletes an active, view or committed snapshot; a committed
//     snapshot with children cannot be removed.
//
// Diff and Apply turn snapshots into OCI layers and back. Names are chosen by
// the caller and must be unique; they may contain any characters except
// "/" and NUL (implementations map them to safe directory names).
type Snapshotter interface {
	Prepare(ctx context.Context, key, parent string) ([]Mount, error)
	View(ctx context.Context, key, parent string) ([]Mount, error)
	// Mounts returns the mounts of an active snapshot or view.
	Mounts(ctx context.Context, key string) ([]Mount, error)
	Commit(ctx context.Context, name, key string) error
	Remove(ctx context.Context, key string) error
	Stat(ctx context.Context, key string) (Info, error)
	Walk(ctx context.Context, fn func(Info) error) error

	// Diff writes the changes of committed snapshot name against its parent
	// as an uncompressed OCI layer tar with the entries BuildKit's differ
	// writes for the same change: depth-first, each directory's entries
	// sorted by real name; deletions as .wh.<name> files (also inside
	// replaced directories: no .wh..wh..opq markers); unchanged entries
	// left out, directories written as parents of changed entries. It
	// streams and never holds the layer in memory.
	Diff(ctx context.Context, name string, w io.Writer) error
	// Apply extracts an uncompressed OCI layer tar into active snapshot key,
	// honouring whiteouts and confining every path to the snapshot.
	Apply(ctx context.Context, key string, r io.Reader) error

	Close() error
}
