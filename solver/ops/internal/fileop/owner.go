package fileop

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/llb"
)

// resolveChown turns c into numeric ids. Names are looked up in the
// /etc/passwd and /etc/group of the tree at root, resolved inside it. A
// numeric user without a group uses the same id as gid; a named user without
// a group uses its primary group.
func resolveChown(root string, c *llb.Chown) (*fsutil.Owner, error) {
	if c == nil {
		return nil, nil
	}
	if c.User == "" && c.Group == "" {
		return nil, nil
	}
	var o fsutil.Owner
	if id, err := strconv.Atoi(c.User); err == nil && id >= 0 {
		o.UID, o.GID = id, id
	} else {
		if c.User == "" {
			return nil, errors.New("chown: empty user name")
		}
		ent, err := lookupDB(root, "/etc/passwd", c.User, 7)
		if err != nil {
			return nil, fmt.Errorf("unable to find user %s: %w", c.User, err)
		}
		if o.UID, err = strconv.Atoi(ent[2]); err != nil {
			return nil, fmt.Errorf("user %s: bad uid %q in /etc/passwd", c.User, ent[2])
		}
		if o.GID, err = strconv.Atoi(ent[3]); err != nil {
			return nil, fmt.Errorf("user %s: bad gid %q in /etc/passwd", c.User, ent[3])
		}
	}
	if c.Group != "" {
		if id, err := strconv.Atoi(c.Group); err == nil && id >= 0 {
			o.GID = id
		} else {
			ent, err := lookupDB(root, "/etc/group", c.Group, 3)
			if err != nil {
				return nil, fmt.Errorf("unable to find group %s: %w", c.Group, err)
			}
			if o.GID, err = strconv.Atoi(ent[2]); err != nil {
				return nil, fmt.Errorf("group %s: bad gid %q in /etc/group", c.Group, ent[2])
			}
		}
	}
	return &o, nil
}

// lookupDB finds the entry called name in the colon-separated database file
// (passwd or group) of the tree at root; an entry has at least minFields
// fields.
func lookupDB(root, file, name string, minFields int) ([]string, error) {
	if root == "" {
		return nil, fmt.Errorf("no %s in an empty tree: %w", file, ErrNotFound)
	}
	p, err := fsutil.ResolveInRoot(root, file)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no %s: %w", file, ErrNotFound)
		}
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", file)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) < minFields-1 || len(fields) < 3 {
			continue
		}
		if fields[0] == name {
			for len(fields) < minFields {
				fields = append(fields, "")
			}
			return fields, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	return nil, fmt.Errorf("no matching entries in %s: %w", file, ErrNotFound)
}
