package dockerfile

import (
	"errors"
	"fmt"
	"net/url"
	"path"

	"github.com/builderdev/builder/llb"
	digest "github.com/opencontainers/go-digest"
)

// remoteCopy is the part of a COPY/ADD that a remote source adds.
type remoteCopy struct {
	cfg     copyConfig
	dest    string
	chown   *llb.Chown
	display string
}

// remoteSource turns src into a source vertex and the copy from it when
// src is a git or HTTP(S) URL, as dockerfile2llb does: a git checkout is
// copied whole ("/") into dest; a download is the single file named after
// the URL's last path element, unpacked only with --unpack=true. ok is
// false for a local path.
func (c *converter) remoteSource(rc remoteCopy, src string, addInput func(*llb.Vertex) int) (a *llb.FileAction, ok bool, err error) {
	cfg := rc.cfg
	g, isGit, gitErr := parseGitRef(src)
	if gitErr != nil && isGit {
		return nil, true, gitErr
	}
	meta := llb.Meta{Name: rc.display, Location: c.location(cfg.loc), IgnoreCache: c.opt.NoCache}
	switch {
	case isGit:
		if !cfg.isAdd {
			return nil, true, errors.New("source can't be a git ref for COPY")
		}
		keep := cfg.keepGitDir
		if g.KeepGitDir != nil {
			if keep != nil && *keep != *g.KeepGitDir {
				return nil, true, errors.New("inconsistent keep-git-dir configuration")
			}
			keep = g.KeepGitDir
		}
		checksum := cfg.checksum
		if checksum != "" && g.Checksum != "" && checksum != g.Checksum {
			return nil, true, fmt.Errorf("checksum mismatch %q != %q", checksum, g.Checksum)
		}
		if g.Checksum != "" {
			checksum = g.Checksum
		}
		// Checked here, before anything is fetched (BuildKit checks it
		// when resolving the source).
		if checksum != "" && !isHex(checksum) {
			return nil, true, fmt.Errorf("invalid checksum %s for Git URL, expected hex commit hash", checksum)
		}
		op := llb.GitOp{
			Remote:         g.Remote,
			Ref:            g.Ref,
			Subdir:         g.SubDir,
			KeepGitDir:     keep != nil && *keep,
			Checksum:       checksum,
			SkipSubmodules: g.Submodules != nil && !*g.Submodules,
		}
		v := llb.NewVertex(op, nil, meta)
		return &llb.FileAction{Copy: &llb.Copy{
			Src:             addInput(v),
			SrcPaths:        []string{"/"},
			Dest:            rc.dest,
			Chown:           rc.chown,
			Chmod:           cfg.chmod,
			DirContentsOnly: true,
			CreateDestPath:  true,
		}}, true, nil
	case isURL(src):
		if !cfg.isAdd {
			return nil, true, fmt.Errorf("source can't be a URL for COPY: %s", src)
		}
		f := "__unnamed__"
		if u, err := url.Parse(src); err == nil {
			if base := path.Base(u.Path); base != "." && base != "/" {
				f = base
			}
		}
		if cfg.checksum != "" {
			if _, err := digest.Parse(cfg.checksum); err != nil {
				return nil, true, fmt.Errorf("invalid checksum %q: %w", cfg.checksum, err)
			}
		}
		v := llb.NewVertex(llb.HTTPOp{URL: src, Checksum: cfg.checksum, Filename: f}, nil, meta)
		return &llb.FileAction{Copy: &llb.Copy{
			Src:            addInput(v),
			SrcPaths:       []string{"/" + f},
			Dest:           rc.dest,
			Chown:          rc.chown,
			Chmod:          cfg.chmod,
			CreateDestPath: true,
			AttemptUnpack:  cfg.unpack != nil && *cfg.unpack,
		}}, true, nil
	}
	return nil, false, nil
}

// isHex reports whether s is a non-empty hex string (a commit hash or a
// prefix of one).
func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}
