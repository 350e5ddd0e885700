package buildinfo

import "runtime/debug"

// Version returns the version, the VCS commit (with "-dirty" for a
// modified tree) and the commit time: version and commit when set at link
// time, else what the go command records in the binary's build info.
func Version(version, commit string) (ver, rev, when string) {
	ver, rev = version, commit
	defer func() {
		if rev == "" {
			rev = "unknown"
		}
	}()
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if ver == "" {
			ver = "unknown"
		}
		return ver, rev, ""
	}
	if ver == "" {
		ver = bi.Main.Version
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if rev == "" {
				rev = s.Value
			}
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty && rev != "" {
		rev += "-dirty"
	}
	if ver == "" {
		ver = "(devel)"
	}
	return ver, rev, when
}
