// Package tests holds checks of the repository as a whole; the end-to-end
// acceptance test is acceptance.sh.
package tests

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shArray returns the words of a bash array NAME=(...) in lib, with
// "${OTHER[@]}" expanded from the same file.
func shArray(t *testing.T, lib, name string) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + `=\(([^)]*)\)`).FindStringSubmatch(lib)
	if m == nil {
		t.Fatalf(".ci/lib.sh has no %s=(...)", name)
	}
	var out []string
	for _, w := range strings.Fields(m[1]) {
		if r := regexp.MustCompile(`^"\$\{(\w+)\[@\]\}"$`).FindStringSubmatch(w); r != nil {
			out = append(out, shArray(t, lib, r[1])...)
			continue
		}
		out = append(out, w)
	}
	return out
}

// backticked returns the words in backticks in s.
func backticked(s string) []string {
	var out []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(s, -1) {
		out = append(out, strings.Fields(m[1])...)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	return strings.Join(a, " ") == strings.Join(b, " ")
}

// TestReadmeMatchesScripts checks that the README's getting-started text
// says what the scripts do: the packages each command installs, the Go
// version of go.mod, and the install targets it names.
func TestReadmeMatchesScripts(t *testing.T) {
	readme := strings.Join(strings.Fields(read(t, "../README.md")), " ")
	lib := read(t, "../.ci/lib.sh")
	example := shArray(t, lib, "EXAMPLE_APT_PACKAGES")
	all := shArray(t, lib, "BUILDER_APT_PACKAGES")

	m := regexp.MustCompile(`installs what is missing \(Debian: ([^)]*)\)`).FindStringSubmatch(readme)
	if m == nil || !sameSet(backticked(m[1]), example) {
		t.Errorf("README's first command installs %v, .ci/lib.sh EXAMPLE_APT_PACKAGES is %v", m, example)
	}
	m = regexp.MustCompile(`installs the same packages \(and ([^)]*) for`).FindStringSubmatch(readme)
	if m == nil || !sameSet(append(backticked(m[1]), example...), all) {
		t.Errorf("README's second command installs %v more, .ci/lib.sh BUILDER_APT_PACKAGES is %v", m, all)
	}
	if !strings.Contains(read(t, "../examples/run.sh"), `ensure_packages "${EXAMPLE_APT_PACKAGES[@]}"`) ||
		!strings.Contains(read(t, "../.ci/run"), `ensure_packages "${BUILDER_APT_PACKAGES[@]}"`) {
		t.Error("examples/run.sh or .ci/run do not install the lists the README names")
	}

	goMod := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(read(t, "../go.mod"))
	if goMod == nil || !strings.Contains(readme, "`go.mod`: "+goMod[1]) {
		t.Errorf("README does not state go.mod's Go version %v", goMod)
	}
	mk := read(t, "../Makefile")
	for _, want := range []string{"CGO_ENABLED=0", "\ninstall:", "./cmd/builder"} {
		if !strings.Contains(mk, want) {
			t.Errorf("Makefile lacks %q", want)
		}
	}
	if !strings.Contains(readme, "make install") {
		t.Error("README does not say how to install builder")
	}
}
