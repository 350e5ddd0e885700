package build

import "testing"

// TestParseSize checks docker's size syntax, shared by build --memory,
// run -m and prune --keep-storage.
func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"1024", 1024, false}, {"512m", 512 << 20, false}, {"512M", 512 << 20, false},
		{"1g", 1 << 30, false}, {"1gb", 1 << 30, false}, {"1.5k", 1536, false},
		{"64mb", 64 << 20, false}, {"100b", 100, false}, {"1MiB", 1 << 20, false}, {"1t", 1 << 40, false},
		{"1.5g", 3 << 29, false}, {"10", 10, false}, {"4k", 4096, false}, {"2GB", 2 << 30, false},
		{"", 0, true}, {"m", 0, true}, {"12x", 0, true}, {"-1m", 0, true}, {"-1", 0, true},
		{"99999999999999999g", 0, true},
	} {
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
