package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/snapshot/fsutil"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// Container is the record `builder run` keeps of a container, in
// ROOT/containers/<ID>/config.json, until `builder rm` (or --rm) removes
// it together with its snapshot.
type Container struct {
	ID   string `json:"Id"`
	Name string `json:"Name"`
	// Image is the image as given to run; ImageID its config digest.
	Image   string `json:"Image"`
	ImageID string `json:"ImageID,omitempty"`
	// Command is the process's argv (entrypoint and command).
	Command []string  `json:"Command"`
	Created time.Time `json:"Created"`
	// State is "created", "running" or "exited".
	State      string    `json:"State"`
	ExitCode   int       `json:"ExitCode"`
	StartedAt  time.Time `json:"StartedAt,omitempty"`
	FinishedAt time.Time `json:"FinishedAt,omitempty"`
	// Snapshot is the key of the container's active snapshot (its
	// writable root filesystem).
	Snapshot string `json:"Snapshot"`
	// Pid is the builder process that runs the container while State is
	// "running"; `builder rm -f` signals it.
	Pid int `json:"Pid,omitempty"`
}

// Container states.
const (
	stateCreated = "created"
	stateRunning = "running"
	stateExited  = "exited"
)

// errNoSuchContainer is returned (wrapped) for an unknown ID or name.
var errNoSuchContainer = errors.New("No such container")

// containerName is docker's rule for --name.
var containerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// containers is the container records under ROOT/containers.
type containers struct{ dir string }

func openContainers(root string) (*containers, error) {
	dir := filepath.Join(root, "containers")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("containers in %s: %w", root, err)
	}
	return &containers{dir: dir}, nil
}

// lockAll serializes the creation and removal of records (name
// uniqueness).
func (cs *containers) lockAll() (func(), error) {
	return fsutil.Lock(filepath.Join(cs.dir, "lock"), true, false)
}

func (cs *containers) recordPath(id string) string {
	return filepath.Join(cs.dir, id, "config.json")
}

// write replaces c's record atomically.
func (cs *containers) write(c *Container) error {
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(cs.recordPath(c.ID), 0o600, raw); err != nil {
		return fmt.Errorf("container %s: writing its record: %w", c.ID, err)
	}
	return nil
}

func (cs *containers) read(id string) (*Container, error) {
	raw, err := os.ReadFile(cs.recordPath(id))
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	var c Container
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("container %s: %s: %w", id, cs.recordPath(id), err)
	}
	return &c, nil
}

// list returns every container, newest first. A record whose directory
// has no config.json yet (being created) or no longer (being removed) is
// skipped.
func (cs *containers) list() ([]*Container, error) {
	ents, err := os.ReadDir(cs.dir)
	if err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	var out []*Container
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		c, err := cs.read(e.Name())
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

// find resolves ref as docker does: a full ID, a name, then an
// unambiguous ID prefix.
func (cs *containers) find(ref string) (*Container, error) {
	all, err := cs.list()
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
		return nil, fmt.Errorf("%w: %s", errNoSuchContainer, ref)
	case 1:
		return match[0], nil
	}
	return nil, fmt.Errorf("multiple IDs found with provided prefix: %s", ref)
}

// create records a new container in state "created" and returns the
// release of its running lock, held until the container is done. The name
// must be unused ("" picks a random one).
func (cs *containers) create(c *Container) (func(), error) {
	unlock, err := cs.lockAll()
	if err != nil {
		return nil, err
	}
	defer unlock()
	all, err := cs.list()
	if err != nil {
		return nil, err
	}
	used := map[string]string{}
	for _, x := range all {
		used[x.Name] = x.ID
	}
	if c.Name == "" {
		for c.Name == "" || used[c.Name] != "" {
			c.Name = randomName()
		}
	} else if id := used[c.Name]; id != "" {
		return nil, fmt.Errorf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name", "/"+c.Name, id)
	}
	dir := filepath.Join(cs.dir, c.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("container %s: %w", c.ID, err)
	}
	release, err := fsutil.Lock(filepath.Join(dir, "running"), true, false)
	if err == nil {
		if err = cs.write(c); err != nil {
			release()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return release, nil
}

// running says whether a builder process still runs c: it holds the
// running lock for as long as the container lives.
func (cs *containers) running(c *Container) bool {
	release, err := fsutil.Lock(filepath.Join(cs.dir, c.ID, "running"), false, true)
	if err != nil {
		return errors.Is(err, fsutil.ErrLocked)
	}
	release()
	return false
}

// remove deletes c's snapshot and record. A running container needs
// force: its builder process gets SIGTERM (which ends the container, as
// Ctrl-C does) and remove waits up to wait for it to finish.
func (cs *containers) remove(ctx context.Context, sn snapshot.Snapshotter, c *Container, force bool, wait time.Duration) error {
	if cs.running(c) {
		if !force {
			return fmt.Errorf("cannot remove container %q: container is running: stop the container before removing or force remove", "/"+c.Name)
		}
		if c.Pid > 0 {
			if err := unix.Kill(c.Pid, unix.SIGTERM); err != nil && err != unix.ESRCH {
				return fmt.Errorf("stopping container %s (builder process %d): %w", c.ID, c.Pid, err)
			}
		}
		deadline := time.Now().Add(wait)
		for cs.running(c) {
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
	return cs.delete(ctx, sn, c)
}

// delete removes c's snapshot and record, running or not (the builder
// process that runs c deletes it this way with --rm).
func (cs *containers) delete(ctx context.Context, sn snapshot.Snapshotter, c *Container) error {
	dir := filepath.Join(cs.dir, c.ID)
	unlock, err := cs.lockAll()
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
	// files but at worst a directory without a record, which list skips.
	if err := os.Remove(cs.recordPath(c.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
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

func randomName() string {
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return nameLeft[int(b[0])%len(nameLeft)] + "_" + nameRight[int(b[1])%len(nameRight)]
}

func newPsCommand() *cobra.Command {
	var root string
	var all, quiet, noTrunc bool
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := openContainers(root)
			if err != nil {
				return err
			}
			list, err := cs.list()
			if err != nil {
				return err
			}
			rows := make([]psRow, 0, len(list))
			for _, c := range list {
				rows = append(rows, psRow{c: c, running: cs.running(c)})
			}
			return printPs(cmd.OutOrStdout(), rows, all, quiet, noTrunc, time.Now())
		},
	}
	rootFlag(cmd, &root)
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	return cmd
}

type psRow struct {
	c       *Container
	running bool
}

// status is docker ps's STATUS column. A record left "running" or
// "created" by a builder process that died is shown as Dead.
func (r psRow) status(now time.Time) string {
	c := r.c
	switch {
	case r.running && c.State == stateRunning:
		return "Up " + humanDuration(now.Sub(c.StartedAt))
	case r.running:
		return "Created"
	case c.State == stateExited:
		return fmt.Sprintf("Exited (%d) %s", c.ExitCode, humanAgo(now, c.FinishedAt))
	}
	return "Dead"
}

func printPs(w io.Writer, rows []psRow, all, quiet, noTrunc bool, now time.Time) error {
	id := func(c *Container) string {
		if noTrunc {
			return c.ID
		}
		return c.ID[:12]
	}
	var shown []psRow
	for _, r := range rows {
		if all || (r.running && r.c.State == stateRunning) {
			shown = append(shown, r)
		}
	}
	if quiet {
		for _, r := range shown {
			fmt.Fprintln(w, id(r.c))
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
	for _, r := range shown {
		command := strings.Join(r.c.Command, " ")
		if !noTrunc {
			command = ellipsis(command, 20)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\t%s\n", id(r.c), r.c.Image, strconv.Quote(command), humanAgo(now, r.c.Created), r.status(now), r.c.Name)
	}
	return tw.Flush()
}

// ellipsis shortens s to n runes, ending with "…" when cut (docker ps).
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// humanDuration is docker's units.HumanDuration ("About a minute"), of
// ps's "Up ..." and of every "... ago".
func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	switch m := int(d.Minutes()); {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	switch h := int(d.Round(time.Hour).Hours()); {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	default:
		return fmt.Sprintf("%d years", int(d.Hours())/24/365)
	}
}

// rmWait bounds how long `builder rm -f` waits for a running container.
const rmWait = 30 * time.Second

func newRmCommand() *cobra.Command {
	var root string
	var force bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return RemoveContainers(cmd.Context(), root, args, force, cmd.OutOrStdout())
		},
	}
	rootFlag(cmd, &root)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of a running container (stops its builder process with SIGTERM)")
	return cmd
}

// RemoveContainers removes the containers refs (IDs, ID prefixes or
// names) and their filesystems, printing each ref removed to out as
// docker rm does. Errors of all refs are joined.
func RemoveContainers(ctx context.Context, root string, refs []string, force bool, out io.Writer) error {
	cs, err := openContainers(root)
	if err != nil {
		return err
	}
	unlockRoot, err := lockRoot(root, false, false)
	if err != nil {
		return err
	}
	defer unlockRoot()
	sn, err := snapshot.New(filepath.Join(root, "snapshots"))
	if err != nil {
		return fmt.Errorf("opening snapshots in %s: %w", root, err)
	}
	defer sn.Close()
	var errs []error
	for _, ref := range refs {
		c, err := cs.find(ref)
		if err == nil {
			err = cs.remove(ctx, sn, c, force, rmWait)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("Error response: %w", err))
			continue
		}
		fmt.Fprintln(out, ref)
	}
	return errors.Join(errs...)
}
