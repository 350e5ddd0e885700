package ops

import "testing"

// TestGitVerb: git errors name the subcommand, never the command line with
// the build's temporary paths.
func TestGitVerb(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--git-dir=/tmp/x/git", "--work-tree=/tmp/x/checkout", "fetch", "-q", "origin"}, "fetch"},
		{[]string{"-c", "advice.detachedHead=false", "checkout", "-q"}, "checkout"},
		{[]string{"ls-remote", "https://h/r"}, "ls-remote"},
		{[]string{"--version"}, "command"},
	} {
		if got := gitVerb(tc.args); got != tc.want {
			t.Errorf("gitVerb(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
