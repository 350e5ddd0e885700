package containers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/snapshot"
)

func newContainer(id, name string, created time.Time) *Container {
	return &Container{ID: strings.Repeat(id, 64/len(id)), Name: name, Image: "app", Command: []string{"sh"}, Created: created, State: Created, Snapshot: "run-" + id}
}

func TestStore(t *testing.T) {
	t.Parallel()
	s, err := Open(filepath.Join(t.TempDir(), "containers"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a, b := newContainer("a", "first", now.Add(-time.Minute)), newContainer("ab", "", now)
	releaseA, err := s.Create(a)
	if err != nil {
		t.Fatal(err)
	}
	releaseB, err := s.Create(b)
	if err != nil {
		t.Fatal(err)
	}
	if !ValidName(b.Name) || !strings.Contains(b.Name, "_") {
		t.Errorf("random name %q", b.Name)
	}
	if _, err := s.Create(newContainer("c", "first", now)); err == nil || !strings.Contains(err.Error(), `The container name "/first" is already in use`) {
		t.Errorf("second container named first: %v", err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[0].ID != b.ID || list[1].ID != a.ID {
		t.Fatalf("List = %v, %v; want newest first", list, err)
	}
	for ref, want := range map[string]string{a.ID: a.ID, "first": a.ID, "/first": a.ID, "ab": b.ID, b.Name: b.ID} {
		if c, err := s.Find(ref); err != nil || c.ID != want {
			t.Errorf("Find(%q) = %v, %v; want %s", ref, c, err, want)
		}
	}
	if _, err := s.Find("a"); err == nil || !strings.Contains(err.Error(), "multiple IDs") {
		t.Errorf("Find of an ambiguous prefix: %v", err)
	}
	if _, err := s.Find("zz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Find(zz) = %v, want ErrNotFound", err)
	}

	if !s.IsRunning(a) {
		t.Error("a is not running while its process holds the lock")
	}
	releaseA()
	if s.IsRunning(a) {
		t.Error("a runs after its release")
	}
	if ls, err := s.ListRunning(); err != nil || len(ls) != 2 || ls[0].Container.ID != b.ID || !ls[0].Running || ls[1].Running {
		t.Errorf("ListRunning = %+v, %v; want b running, then a not", ls, err)
	}
	a.State, a.ExitCode = Exited, 3
	if err := s.Write(a); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Find("first"); c.State != Exited || c.ExitCode != 3 {
		t.Errorf("after Write: %+v", c)
	}

	sn, err := snapshot.NewNamed(filepath.Join(t.TempDir(), "snapshots"), "native")
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	ctx := context.Background()
	if _, err := sn.Prepare(ctx, b.Snapshot, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, sn, b, false, time.Second); err == nil || !strings.Contains(err.Error(), "container is running") {
		t.Errorf("Remove of a running container without force: %v", err)
	}
	releaseB()
	if err := s.Remove(ctx, sn, b, false, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Stat(ctx, b.Snapshot); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("b's snapshot after Remove: %v", err)
	}
	if err := s.Delete(ctx, sn, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, sn, a); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	ents, _ := os.ReadDir(s.dir)
	if len(ents) != 1 || ents[0].Name() != "lock" {
		t.Errorf("left in the store: %v", ents)
	}
}

func TestValidName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{"web": true, "a_b.c-1": true, "_x": false, "": false, "a/b": false} {
		if ValidName(name) != want {
			t.Errorf("ValidName(%q) = %v", name, !want)
		}
	}
}
