package llb

import "testing"

// TestRemoteSourceDigests: every field of HTTPOp and GitOp changes the
// digest, and the two kinds never collide.
func TestRemoteSourceDigests(t *testing.T) {
	t.Parallel()
	ops := map[string]Op{
		"http":          HTTPOp{URL: "https://h/f"},
		"http checksum": HTTPOp{URL: "https://h/f", Checksum: "sha256:00"},
		"http filename": HTTPOp{URL: "https://h/f", Filename: "g"},
		"http perm":     HTTPOp{URL: "https://h/f", Perm: 0o644},
		"http uid":      HTTPOp{URL: "https://h/f", UID: 1},
		"http gid":      HTTPOp{URL: "https://h/f", GID: 1},
		"http url":      HTTPOp{URL: "https://h/g"},
		"git":           GitOp{Remote: "https://h/f"},
		"git ref":       GitOp{Remote: "https://h/f", Ref: "main"},
		"git subdir":    GitOp{Remote: "https://h/f", Subdir: "d"},
		"git keep":      GitOp{Remote: "https://h/f", KeepGitDir: true},
		"git checksum":  GitOp{Remote: "https://h/f", Checksum: "abc"},
		"git nosubmod":  GitOp{Remote: "https://h/f", SkipSubmodules: true},
	}
	seen := map[string]string{}
	for name, op := range ops {
		d := NewVertex(op, nil, Meta{Name: name}).Digest().String()
		if other, ok := seen[d]; ok {
			t.Errorf("%s and %s share digest %s", name, other, d)
		}
		seen[d] = name
		if again := NewVertex(op, nil, Meta{Name: "other name"}).Digest().String(); again != d {
			t.Errorf("%s: the display name changed the digest", name)
		}
	}
	if (HTTPOp{}).Kind() != KindHTTP || (GitOp{}).Kind() != KindGit {
		t.Error("wrong kinds")
	}
}
