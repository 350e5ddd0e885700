package containers

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/snapshot"
	"golang.org/x/sys/unix"
)

// Container is the record of one container.
type Container struct {
	ID   string `json:"Id"`
	Name string `json:"Name"`
	// Image is the image as given to run; ImageID its config digest.
	Image   string `json:"Image"`
	ImageID string `json:"ImageID,omitempty"`
	// Command is the process's argv (entrypoint and command).
	Command []string  `json:"Command"`
	Created time.Time `json:"Created"`
	// State is Created, Running or Exited.
	State      string    `json:"State"`
	ExitCode   int       `json:"ExitCode"`
	StartedAt  time.Time `json:"StartedAt,omitempty"`
	FinishedAt time.Time `json:"FinishedAt,omitempty"`
	// Snapshot is the key of the container's active snapshot (its
	// writable root filesystem).
	Snapshot string `json:"Snapshot"`
	// Pid is the builder process that runs the container while State is
	// Running; Remove with force signals it.
	Pid int `json:"Pid,omitempty"`
}

// Container states, as docker names them.
const (
	Created = "created"
	Running = "running"
	Exited  = "exited"
)

// ErrNotFound is returned (wrapped) by Find for an unknown ID or name.
var ErrNotFound = errors.New("No such container")

// validName is docker's rule for --name.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ValidName reports whether name is a valid container name (docker's
// rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*).
func ValidName(name string) bool { return validName.MatchString(name) }

// Store is the container records in one directory.
type Store struct{ dir string }

// Open opens (creating) the record store in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("containers in %s: %w", filepath.Dir(dir), err)
	}
	return &Store{dir: dir}, nil
}

// lockAll serializes the creation and removal of records (name
// uniqueness).
func (s *Store) lockAll() (func(), error) {
	return fsutil.Lock(filepath.Join(s.dir, "lock"), true, false)
}

func (s *Store) recordPath(id string) string {
	return filepath.Join(s.dir, id, "config.json")
}

// Write replaces c's record atomically.
func (s *Store) Write(c *Container) error {
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(s.recordPath(c.ID), 0o600, raw); err != nil {
		return fmt.Errorf("container %s: writing its record: %w", c.ID, err)
	}
	return nil
}

func (s *Store) read(id string) (*Container, error) {
	raw, err := os.ReadFile(s.recordPath(id))
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	var c Container
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("container %s: %s: %w", id, s.recordPath(id), err)
	}
	return &c, nil
}

// List returns every container, newest first. A record whose directory
// has no config.json yet (being created) or no longer (being removed) is
// skipped.
func (s *Store) List() ([]*Container, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	var out []*Container
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		c, err := s.read(e.Name())
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Listed is a container and whether the builder process that runs it is
// alive (a record left Running by a dead process is not).
type Listed struct {
	Container *Container
	Running   bool
}

// ListRunning is List with whether each container runs (IsRunning).
func (s *Store) ListRunning() ([]Listed, error) {
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	out := make([]Listed, 0, len(list))
	for _, c := range list {
		out = append(out, Listed{Container: c, Running: s.IsRunning(c)})
	}
	return out, nil
}

// Find resolves ref as docker does: a full ID, a name, then an
// unambiguous ID prefix.
func (s *Store) Find(ref string) (*Container, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	name := strings.TrimPrefix(ref, "/")
	for _, c := range all {
		if c.ID == ref || c.Name == name {
			return c, nil
		}
	}
	var match []*Container
	if ref != "" {
		for _, c := range all {
			if strings.HasPrefix(c.ID, ref) {
				match = append(match, c)
			}
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
	case 1:
		return match[0], nil
	}
	return nil, fmt.Errorf("multiple IDs found with provided prefix: %s", ref)
}

// Create records a new container (normally in state Created) and returns
// the release of its running lock, to be held until the container is
// done. The name must be unused ("" picks a random one).
func (s *Store) Create(c *Container) (release func(), err error) {
	unlock, err := s.lockAll()
	if err != nil {
		return nil, err
	}
	defer unlock()
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	used := map[string]string{}
	for _, x := range all {
		used[x.Name] = x.ID
	}
	if c.Name == "" {
		for c.Name == "" || used[c.Name] != "" {
			c.Name = RandomName()
		}
	} else if id := used[c.Name]; id != "" {
		return nil, fmt.Errorf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name", "/"+c.Name, id)
	}
	dir := filepath.Join(s.dir, c.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("container %s: %w", c.ID, err)
	}
	release, err = fsutil.Lock(filepath.Join(dir, "running"), true, false)
	if err == nil {
		if err = s.Write(c); err != nil {
			release()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return release, nil
}

// IsRunning says whether a builder process still runs c: it holds the
// running lock for as long as the container lives.
func (s *Store) IsRunning(c *Container) bool {
	release, err := fsutil.Lock(filepath.Join(s.dir, c.ID, "running"), false, true)
	if err != nil {
		return errors.Is(err, fsutil.ErrLocked)
	}
	release()
	return false
}

// Remove deletes c's snapshot (from sn) and record. A running container
// needs force: its builder process gets SIGTERM (which ends the
// container, as Ctrl-C does) and Remove waits up to wait for it to finish.
func (s *Store) Remove(ctx context.Context, sn snapshot.Snapshotter, c *Container, force bool, wait time.Duration) error {
	if s.IsRunning(c) {
		if !force {
			return fmt.Errorf("cannot remove container %q: container is running: stop the container before removing or force remove", "/"+c.Name)
		}
		if c.Pid > 0 {
			if err := unix.Kill(c.Pid, unix.SIGTERM); err != nil && err != unix.ESRCH {
				return fmt.Errorf("stopping container %s (builder process %d): %w", c.ID, c.Pid, err)
			}
		}
		deadline := time.Now().Add(wait)
		for s.IsRunning(c) {
			if time.Now().After(deadline) {
				return fmt.Errorf("container %s: still running %s after SIGTERM to builder process %d", c.ID, wait, c.Pid)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return s.Delete(ctx, sn, c)
}

// Delete removes c's snapshot and record, running or not (the builder
// process that runs c deletes it this way with --rm).
func (s *Store) Delete(ctx context.Context, sn snapshot.Snapshotter, c *Container) error {
	dir := filepath.Join(s.dir, c.ID)
	unlock, err := s.lockAll()
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil // removed meanwhile (a --rm run that ended)
	}
	if c.Snapshot != "" {
		if err := sn.Remove(ctx, c.Snapshot); err != nil && !errors.Is(err, snapshot.ErrNotFound) {
			return fmt.Errorf("removing the filesystem of container %s: %w", c.ID, err)
		}
	}
	// The record goes first, so a crash leaves no record without its
	// files but at worst a directory without a record, which List skips.
	if err := os.Remove(s.recordPath(c.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing container %s: %w", c.ID, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing container %s: %w", c.ID, err)
	}
	return nil
}

// Docker's name generator in small: adjective_surname.
var (
	nameLeft  = []string{"admiring", "bold", "brave", "clever", "eager", "focused", "gallant", "happy", "jolly", "keen", "loving", "modest", "nifty", "quirky", "serene", "stoic", "tender", "vibrant", "wizardly", "zen"}
	nameRight = []string{"babbage", "curie", "darwin", "euler", "fermi", "galois", "hopper", "hypatia", "kepler", "lovelace", "meitner", "newton", "noether", "pascal", "ritchie", "shannon", "tesla", "thompson", "turing", "wozniak"}
)

// RandomName is a docker-style container name, adjective_surname.
func RandomName() string {
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return nameLeft[int(b[0])%len(nameLeft)] + "_" + nameRight[int(b[1])%len(nameRight)]
}
