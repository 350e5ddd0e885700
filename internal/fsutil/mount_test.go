package fsutil

import "testing"

func TestCommonDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"/a/s/1/fs", "/a/s/2/fs", "/a/s/10/work"}, "/a/s"},
		{[]string{"/a/s/1/fs"}, "/a/s/1"},
		{[]string{"/x/1", "/y/2"}, "/"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := commonDir(tt.in); got != tt.want {
			t.Errorf("commonDir(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
