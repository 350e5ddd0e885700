package llb

import (
	"runtime"
	"strings"
	"testing"
)

func TestParsePlatform(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in, want, err string
	}{
		{"linux/amd64", "linux/amd64", ""},
		{"linux/x86_64", "linux/amd64", ""},
		{"linux/arm64/v8", "linux/arm64", ""},
		{"linux/aarch64", "linux/arm64", ""},
		{"linux/arm", "linux/arm/v7", ""},
		{"linux/arm/v6", "linux/arm/v6", ""},
		{"linux/armhf", "linux/arm/v7", ""},
		{"arm64", "linux/arm64", ""},
		{"linux", "linux/" + runtime.GOARCH, ""},
		{"Linux/AMD64", "linux/amd64", ""},
		{"linux//amd64", "", `invalid platform "linux//amd64"`},
		{"plan10/amd64", "", `unknown operating system "plan10"`},
		{"a/b/c/d", "", "too many components"},
		{"windows(10.0.20348.1006)/amd64", "windows(10.0.20348.1006)/amd64", ""},
		{"Windows(1.2.3)/x86_64", "windows(1.2.3)/amd64", ""},
		{"windows()/amd64", "", "want os(osversion)/arch"},
		{"windows(1.2/amd64", "", "want os(osversion)/arch"},
		{"windows(1)x/amd64", "", "want os(osversion)/arch"},
	} {
		p, err := ParsePlatform(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParsePlatform(%q) = %v, %v; want error %q", tt.in, p, err, tt.err)
			}
			continue
		}
		if err != nil || p.String() != tt.want {
			t.Errorf("ParsePlatform(%q) = %v, %v; want %s", tt.in, p, err, tt.want)
		}
	}
}

func TestParsePlatforms(t *testing.T) {
	t.Parallel()
	ps, err := ParsePlatforms("linux/amd64, linux/arm64,linux/aarch64,linux/arm64/v8")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].String() != "linux/amd64" || ps[1].String() != "linux/arm64" {
		t.Errorf("ParsePlatforms = %v, want [linux/amd64 linux/arm64] (duplicates dropped)", ps)
	}
	if _, err := ParsePlatforms(" , "); err == nil {
		t.Error("ParsePlatforms of an empty list: no error")
	}
	if d := (Platform{OS: "linux", Architecture: "arm", Variant: "v7"}).DirName(); d != "linux_arm_v7" {
		t.Errorf("DirName = %q", d)
	}
}

func TestPlatformMatch(t *testing.T) {
	t.Parallel()
	p := func(s string) Platform {
		var out Platform
		parts := strings.Split(s, "/")
		out.OS, out.Architecture = parts[0], parts[1]
		if len(parts) > 2 {
			out.Variant = parts[2]
		}
		return out
	}
	pv := func(s string) Platform {
		q, err := ParsePlatform(s)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	for _, tt := range []struct {
		want, have string
		score      int
	}{
		{"windows(1.2.3)/amd64", "windows(1.2.3)/amd64", 2},
		{"windows(1.2.3)/amd64", "windows(1.1.0)/amd64", 0},
		{"windows/amd64", "windows(1.1.0)/amd64", 2},
		{"windows(1.2.3)/amd64", "windows/amd64", 2},
	} {
		if got := pv(tt.want).Match(pv(tt.have)); got != tt.score {
			t.Errorf("%s.Match(%s) = %d, want %d", tt.want, tt.have, got, tt.score)
		}
	}
	for _, tt := range []struct {
		want, have string
		score      int
	}{
		{"linux/amd64", "linux/amd64", 2},
		{"linux/arm64", "linux/arm64/v8", 2},
		{"linux/arm64/v8", "linux/arm64", 2},
		{"linux/arm64", "linux/aarch64", 2},
		{"linux/arm/v7", "linux/arm", 2}, // arm defaults to v7
		{"linux/arm/v6", "linux/arm", 1}, // no variant: a fallback
		{"linux/arm/v7", "linux/arm/v6", 0},
		{"linux/amd64", "linux/arm64", 0},
		{"linux/amd64", "windows/amd64", 0},
	} {
		if got := p(tt.want).Match(p(tt.have)); got != tt.score {
			t.Errorf("%s.Match(%s) = %d, want %d", tt.want, tt.have, got, tt.score)
		}
	}
}
