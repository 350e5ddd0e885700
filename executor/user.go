package executor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ExecUser is a resolved Spec.User.
type ExecUser struct {
	UID, GID uint32
	// Groups are the supplementary groups (from /etc/group membership).
	Groups []uint32
	Home   string
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

func parsePasswd(r io.Reader) ([]passwdEntry, error) {
	var out []passwdEntry
	err := scanColon(r, func(f []string) {
		if len(f) < 7 {
			return
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			return
		}
		out = append(out, passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid), home: f[5]})
	})
	return out, err
}

func parseGroup(r io.Reader) ([]groupEntry, error) {
	var out []groupEntry
	err := scanColon(r, func(f []string) {
		if len(f) < 4 {
			return
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return
		}
		var members []string
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				members = append(members, m)
			}
		}
		out = append(out, groupEntry{name: f[0], gid: uint32(gid), members: members})
	})
	return out, err
}

func scanColon(r io.Reader, fn func([]string)) error {
	if r == nil {
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	return sc.Err()
}

// ResolveUser resolves spec ("", name, uid, name:group, uid:gid, ...)
// against the contents of /etc/passwd and /etc/group (either may be nil
// when the file is missing), the way docker and runc do: numeric ids need no
// entry, names must have one; supplementary groups are the primary group
// and the groups that list the user's name as a member.
func ResolveUser(spec string, passwd, group io.Reader) (ExecUser, error) {
	users, err := parsePasswd(passwd)
	if err != nil {
		return ExecUser{}, fmt.Errorf("reading passwd file: %w", err)
	}
	groups, err := parseGroup(group)
	if err != nil {
		return ExecUser{}, fmt.Errorf("reading group file: %w", err)
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	u := ExecUser{Home: "/"}
	var entry *passwdEntry
	if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		u.UID = uint32(n)
		for i := range users {
			if users[i].uid == u.UID {
				entry = &users[i]
				break
			}
		}
	} else {
		for i := range users {
			if users[i].name == userPart {
				entry = &users[i]
				break
			}
		}
		if entry == nil {
			return ExecUser{}, fmt.Errorf("unable to find user %s: no matching entries in passwd file", userPart)
		}
		u.UID = entry.uid
	}
	if entry != nil {
		u.GID = entry.gid
		if entry.home != "" {
			u.Home = entry.home
		}
	}
	if hasGroup && groupPart != "" {
		if n, err := strconv.ParseUint(groupPart, 10, 32); err == nil {
			u.GID = uint32(n)
		} else {
			found := false
			for _, g := range groups {
				if g.name == groupPart {
					u.GID, found = g.gid, true
					break
				}
			}
			if !found {
				return ExecUser{}, fmt.Errorf("unable to find group %s: no matching entries in group file", groupPart)
			}
		}
	}
	// The primary group comes first, then the groups that list the user
	// (only without an explicit group), as runc and containerd set
	// additional gids (CVE-2023-25173; BuildKit's ensureAdditionalGids):
	// USER 1000:1000 runs with groups=1000, a uid without a passwd entry
	// with groups=0.
	u.Groups = []uint32{u.GID}
	if entry != nil && !hasGroup {
		seen := map[uint32]bool{u.GID: true}
		for _, g := range groups {
			for _, m := range g.members {
				if m == entry.name && !seen[g.gid] {
					seen[g.gid] = true
					u.Groups = append(u.Groups, g.gid)
				}
			}
		}
	}
	return u, nil
}

// resolveUserFiles resolves spec against the passwd and group files at the
// given paths (in the init, after pivot_root: /etc/passwd, /etc/group).
func resolveUserFiles(spec, passwdPath, groupPath string) (ExecUser, error) {
	open := func(p string) (io.ReadCloser, error) {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return f, err
	}
	pw, err := open(passwdPath)
	if err != nil {
		return ExecUser{}, fmt.Errorf("opening %s: %w", passwdPath, err)
	}
	gr, err := open(groupPath)
	if err != nil {
		if pw != nil {
			pw.Close()
		}
		return ExecUser{}, fmt.Errorf("opening %s: %w", groupPath, err)
	}
	var pr, gr2 io.Reader
	if pw != nil {
		defer pw.Close()
		pr = pw
	}
	if gr != nil {
		defer gr.Close()
		gr2 = gr
	}
	return ResolveUser(spec, pr, gr2)
}
