package dockerfile

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// gitRef is a git source of ADD, parsed with BuildKit's syntax:
//
//	https://host/repo.git#ref:subdir   (http(s) needs the .git suffix)
//	git://host/repo#ref                ssh://user@host/repo.git#ref
//	user@host:path/repo.git#ref:subdir (scp-like, ssh)
//
// plus the query form ?ref=, ?tag=, ?branch=, ?subdir=, ?checksum= (or
// ?commit=), ?keep-git-dir= and ?submodules=.
type gitRef struct {
	// Remote is the URL without fragment and query, for the git CLI.
	Remote     string
	Ref        string
	SubDir     string
	Checksum   string
	KeepGitDir *bool
	Submodules *bool
}

var (
	protoPrefix = regexp.MustCompile(`^[a-zA-Z0-9]+://`)
	scpURL      = regexp.MustCompile(`^([a-zA-Z0-9-_]+)@([a-zA-Z0-9-.]+):(.*?)(?:\?(.*?))?(?:#(.*))?$`)
)

// parseGitRef parses s as a git source. isGit is false for anything that
// is not a git URL (a local path, an http URL without .git); err is set for
// a git URL with a bad fragment or query.
func parseGitRef(s string) (ref *gitRef, isGit bool, err error) {
	if strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") || strings.HasPrefix(s, "github.com/") {
		// github.com/x/y is a git ref only for build contexts.
		return nil, false, nil
	}
	var (
		query    url.Values
		fragment string
	)
	res := &gitRef{}
	if proto := protoPrefix.FindString(s); proto != "" {
		switch strings.ToLower(strings.TrimSuffix(proto, "://")) {
		case "http", "https", "git", "ssh":
		default:
			return nil, false, nil
		}
		u, err := url.Parse(s)
		if err != nil {
			return nil, false, nil
		}
		scheme := strings.ToLower(u.Scheme)
		if (scheme == "http" || scheme == "https") && !strings.HasSuffix(u.Path, ".git") {
			return nil, false, nil
		}
		query, fragment = u.Query(), u.Fragment
		u.Fragment, u.RawFragment, u.RawQuery = "", "", ""
		res.Remote = u.String()
	} else if m := scpURL.FindStringSubmatch(s); m != nil {
		if m[4] != "" {
			if query, err = url.ParseQuery(m[4]); err != nil {
				return nil, true, fmt.Errorf("invalid query in git url %s: %w", s, err)
			}
		}
		fragment = m[5]
		res.Remote = m[1] + "@" + m[2] + ":" + m[3]
	} else {
		return nil, false, nil
	}
	if fragment != "" {
		r, sub, _ := strings.Cut(fragment, ":")
		res.Ref = r
		res.SubDir = strings.TrimPrefix(path.Join("/", sub), "/")
	}
	if err := res.loadQuery(query); err != nil {
		return nil, true, fmt.Errorf("git url %s: %w", s, err)
	}
	return res, true, nil
}

func (g *gitRef) loadQuery(q url.Values) error {
	var tag, branch string
	boolOpt := func(k string, v []string) (*bool, error) {
		b := true
		if len(v) > 0 && v[0] != "" {
			var err error
			if b, err = strconv.ParseBool(v[0]); err != nil {
				return nil, fmt.Errorf("invalid %s value: %q", k, v[0])
			}
		}
		return &b, nil
	}
	for k, v := range q {
		if len(v) > 1 {
			return fmt.Errorf("query %q has multiple values", k)
		}
		if (len(v) == 0 || v[0] == "") && k != "keep-git-dir" && k != "submodules" {
			return fmt.Errorf("query %q has no value", k)
		}
		var err error
		switch k {
		case "ref":
			if g.Ref != "" && g.Ref != v[0] {
				return fmt.Errorf("ref conflicts: %q vs %q", g.Ref, v[0])
			}
			g.Ref = v[0]
		case "tag":
			tag = v[0]
		case "branch":
			branch = v[0]
		case "subdir":
			if g.SubDir != "" && g.SubDir != v[0] {
				return fmt.Errorf("subdir conflicts: %q vs %q", g.SubDir, v[0])
			}
			g.SubDir = v[0]
		case "checksum", "commit":
			g.Checksum = v[0]
		case "keep-git-dir":
			g.KeepGitDir, err = boolOpt(k, v)
		case "submodules":
			g.Submodules, err = boolOpt(k, v)
		default:
			return fmt.Errorf("unexpected query %q", k)
		}
		if err != nil {
			return err
		}
	}
	if tag != "" {
		if !strings.HasPrefix(tag, "refs/tags/") {
			tag = "refs/tags/" + tag
		}
		if g.Ref != "" && g.Ref != tag {
			return fmt.Errorf("ref conflicts: %q vs %q", g.Ref, tag)
		}
		g.Ref = tag
	}
	if branch != "" {
		if tag != "" {
			return errors.New("branch conflicts with tag")
		}
		if !strings.HasPrefix(branch, "refs/heads/") {
			branch = "refs/heads/" + branch
		}
		if g.Ref != "" && g.Ref != branch {
			return fmt.Errorf("ref conflicts: %q vs %q", g.Ref, branch)
		}
		g.Ref = branch
	}
	return nil
}
