package llb

import "testing"

func TestMergeDigest(t *testing.T) {
	t.Parallel()
	a := NewVertex(FileOp{Base: -1, Actions: []FileAction{{Mkfile: &Mkfile{Path: "/a", Mode: 0o644}}}}, nil, Meta{Name: "a"})
	b := NewVertex(FileOp{Base: -1, Actions: []FileAction{{Mkfile: &Mkfile{Path: "/b", Mode: 0o644}}}}, nil, Meta{Name: "b"})
	m := func(in ...*Vertex) *Vertex { return NewVertex(MergeOp{}, in, Meta{Name: "LINK COPY"}) }
	tests := []struct {
		name string
		x, y *Vertex
		same bool
	}{
		{"same inputs, other name", m(a, b), m(a, b).WithMeta(Meta{Name: "other"}), true},
		{"order counts", m(a, b), m(b, a), false},
		{"scratch counts", m(nil, b), m(a, b), false},
		{"not a file op", m(a), a, false},
	}
	for _, tt := range tests {
		if got := tt.x.Digest() == tt.y.Digest(); got != tt.same {
			t.Errorf("%s: same digest = %v, want %v", tt.name, got, tt.same)
		}
	}
	if (MergeOp{}).Kind() != KindMerge {
		t.Error("MergeOp kind")
	}
}
