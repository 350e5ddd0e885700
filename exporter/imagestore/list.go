package imagestore

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/builderdev/builder/exporter"
)

// Filters are builder images' REPOSITORY[:TAG] argument and
// --filter conditions.
type Filters struct {
	// Arg is the REPOSITORY[:TAG] argument.
	Arg string
	// Dangling, when set, keeps only unnamed images (true) or only named
	// ones (false).
	Dangling *bool
	// References are path.Match patterns of familiar names.
	References []string
}

// ParseFilters parses builder images' --filter values (dangling=BOOL,
// reference=PATTERN), as docker images does.
func ParseFilters(fs []string) (Filters, error) {
	var f Filters
	for _, x := range fs {
		k, v, ok := strings.Cut(x, "=")
		switch {
		case !ok:
			return f, fmt.Errorf("bad format of filter (expected name=value): %s", x)
		case k == "dangling":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return f, fmt.Errorf("invalid filter 'dangling=%s': want true or false", v)
			}
			f.Dangling = &b
		case k == "reference":
			if _, err := path.Match(v, ""); err != nil {
				return f, fmt.Errorf("invalid filter 'reference=%s': %w", v, err)
			}
			f.References = append(f.References, v)
		default:
			return f, fmt.Errorf("invalid filter '%s' (supported: dangling, reference)", k)
		}
	}
	return f, nil
}

// Keep says whether a row passes the filters.
func (f Filters) Keep(r Row) bool {
	dangling := r.Repo == "<none>"
	if f.Dangling != nil && *f.Dangling != dangling {
		return false
	}
	if len(f.References) == 0 {
		return true
	}
	if dangling {
		return false
	}
	for _, p := range f.References {
		// As docker: the pattern matches the familiar name, with or
		// without the tag.
		if ok, _ := path.Match(p, r.Repo); ok {
			return true
		}
		if ok, _ := path.Match(p, r.Repo+":"+r.Tag); ok {
			return true
		}
	}
	return false
}

// Row is one line of `builder images`.
type Row struct {
	// Repo and Tag are the familiar name's parts, <none> for an unnamed
	// image.
	Repo, Tag string
	Image     Image
}

// Rows lists one row per name (<none> for unnamed images), filtered by
// REPOSITORY[:TAG] as docker images filters.
func Rows(all []Image, filter string) []Row {
	var out []Row
	frepo, ftag, _ := strings.Cut(filter, ":")
	if strings.Contains(ftag, "/") { // host:port/repo
		frepo, ftag = filter, ""
		if i := strings.LastIndex(filter, ":"); i > strings.LastIndex(filter, "/") {
			frepo, ftag = filter[:i], filter[i+1:]
		}
	}
	for _, im := range all {
		if len(im.Names) == 0 {
			if filter == "" {
				out = append(out, Row{"<none>", "<none>", im})
			}
			continue
		}
		for _, n := range im.Names {
			short := exporter.FamiliarName(n)
			i := strings.LastIndex(short, ":")
			repo, tag := short[:i], short[i+1:]
			if filter != "" {
				if frepo != repo && frepo != n[:strings.LastIndex(n, ":")] {
					continue
				}
				if ftag != "" && ftag != tag {
					continue
				}
			}
			out = append(out, Row{repo, tag, im})
		}
	}
	return out
}

// FamiliarNames lists the names of the stored images, in their short form
// (as builder images shows them), that start with prefix.
func (s *Store) FamiliarNames(prefix string) ([]string, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, im := range all {
		for _, n := range im.Names {
			if short := exporter.FamiliarName(n); strings.HasPrefix(short, prefix) {
				out = append(out, short)
			}
		}
	}
	return out, nil
}

// Apply lists the rows of all that pass the filters, as builder images
// shows them.
func (f Filters) Apply(all []Image) []Row {
	var rs []Row
	for _, r := range Rows(all, f.Arg) {
		if f.Keep(r) {
			rs = append(rs, r)
		}
	}
	return rs
}
