package dockerfile

import (
	"strings"
	"testing"

	"github.com/builderdev/builder/llb"
)

// linkedCopy returns the merge at the top of res and its copy input.
func linkedCopy(t *testing.T, res *Result) (*llb.Vertex, *llb.Vertex) {
	t.Helper()
	m := res.State
	if _, ok := m.Op().(llb.MergeOp); !ok {
		t.Fatalf("top vertex %q is a %T, want a merge", m.Name(), m.Op())
	}
	if len(m.Inputs()) != 2 {
		t.Fatalf("merge has %d inputs, want root and copy", len(m.Inputs()))
	}
	return m, m.Inputs()[1]
}

func TestCopyLink(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		df    string
		check func(t *testing.T, res *Result)
	}{
		{
			name: "copy on scratch merged onto the root",
			df:   "FROM busybox\nWORKDIR /app\nCOPY --link --chown=1000:1000 f ./\n",
			check: func(t *testing.T, res *Result) {
				m, cp := linkedCopy(t, res)
				op := cp.Op().(llb.FileOp)
				if op.Base != -1 {
					t.Errorf("link copy base %d, want scratch", op.Base)
				}
				for _, in := range cp.Inputs() {
					if _, ok := in.Op().(llb.LocalOp); !ok {
						t.Errorf("link copy has input %q: only the context may be one", in.Name())
					}
				}
				c := op.Actions[0].Copy
				if c.Dest != "/app/" || !c.CreateDestPath || *c.Chown != (llb.Chown{User: "1000", Group: "1000"}) {
					t.Errorf("copy %+v", c)
				}
				if _, ok := m.Inputs()[0].Op().(llb.FileOp); !ok || !strings.Contains(m.Inputs()[0].Name(), "WORKDIR") {
					t.Errorf("merge input 0 is %q, want the WORKDIR step", m.Inputs()[0].Name())
				}
				if cp.Name() != "[3/3] COPY --link --chown=1000:1000 f ./" || m.Name() != "[3/3] LINK COPY --link --chown=1000:1000 f ./" {
					t.Errorf("names %q, %q", cp.Name(), m.Name())
				}
				// One step in the progress: both in a group named after
				// the instruction, the copy weak.
				cg, mg := cp.Meta().ProgressGroup, m.Meta().ProgressGroup
				if cg == nil || mg == nil || cg.ID != mg.ID || cg.ID == "" || !cg.Weak || mg.Weak ||
					cg.Name != "[3/3] COPY --link --chown=1000:1000 f ./" || mg.Name != cg.Name {
					t.Errorf("progress groups %+v, %+v", cg, mg)
				}
				if h := res.Config.History[len(res.Config.History)-1]; h.CreatedBy != "COPY --chown=1000:1000 f ./ # buildkit" || h.EmptyLayer {
					t.Errorf("history %+v", h)
				}
			},
		},
		{
			name: "from scratch and from a stage",
			df:   "FROM busybox AS src\nRUN touch /x\nFROM scratch\nCOPY --link --from=src /x /y\n",
			check: func(t *testing.T, res *Result) {
				m, cp := linkedCopy(t, res)
				if m.Inputs()[0] != nil {
					t.Errorf("merge root %q, want scratch", m.Inputs()[0].Name())
				}
				if _, ok := cp.Inputs()[0].Op().(llb.ExecOp); !ok || cp.Op().(llb.FileOp).Base != -1 {
					t.Errorf("copy reads %q with base %d", cp.Inputs()[0].Name(), cp.Op().(llb.FileOp).Base)
				}
			},
		},
		{
			name: "ADD --link",
			df:   "FROM busybox\nADD --link a.tar /opt/\n",
			check: func(t *testing.T, res *Result) {
				_, cp := linkedCopy(t, res)
				if c := cp.Op().(llb.FileOp).Actions[0].Copy; !c.AttemptUnpack || c.Dest != "/opt/" {
					t.Errorf("add %+v", c)
				}
			},
		},
		{
			name: "--chmod falls back to a plain copy as BuildKit",
			df:   "FROM busybox\nCOPY --link --chmod=600 f /\n",
			check: func(t *testing.T, res *Result) {
				op, ok := res.State.Op().(llb.FileOp)
				if !ok || op.Base != 0 {
					t.Errorf("top vertex %T base %d, want a copy onto the root", res.State.Op(), op.Base)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := mustConvert(t, tt.df, nil)
			checkInvariant(t, res)
			tt.check(t, res)
		})
	}
}

// TestCopyLinkKeyIndependentOfBase: the copy's digest is the same on any
// base, the merge's is not.
func TestCopyLinkKeyIndependentOfBase(t *testing.T) {
	t.Parallel()
	var copies, merges []string
	for _, df := range []string{
		"FROM busybox\nCOPY --link f /app/\n",
		"FROM alpine:3\nCOPY --link f /app/\n",
		"FROM busybox\nRUN echo changed\nCOPY --link f /app/\n",
	} {
		m, cp := linkedCopy(t, mustConvert(t, df, nil))
		copies = append(copies, string(cp.Digest()))
		merges = append(merges, string(m.Digest()))
	}
	for i := 1; i < len(copies); i++ {
		if copies[i] != copies[0] {
			t.Errorf("copy digest %d differs: %v", i, copies)
		}
		if merges[i] == merges[0] {
			t.Errorf("merge digest %d is the same on another base", i)
		}
	}
}

func TestCopyLinkChownByName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		chown string
		err   bool
	}{
		{"1000", false},
		{"1000:1000", false},
		{"root", false},
		{"root:0", false},
		{"0:root", false},
		{"app", true},
		{"1000:staff", true},
		{"app:1000", true},
	}
	for _, tt := range tests {
		_, _, err := convertString(t, "FROM busybox\nCOPY --link --chown="+tt.chown+" f /\n", nil)
		if tt.err {
			want := "--chown=" + tt.chown + ": user and group names can't be resolved when used with --link, use numeric uid[:gid] instead"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("--chown=%s: error %v, want %q", tt.chown, err, want)
			}
		} else if err != nil {
			t.Errorf("--chown=%s: %v", tt.chown, err)
		}
		// Without --link names are resolved in the destination.
		if _, _, err := convertString(t, "FROM busybox\nCOPY --chown="+tt.chown+" f /\n", nil); err != nil {
			t.Errorf("--chown=%s without --link: %v", tt.chown, err)
		}
	}
}
