package dockerfile

import (
	"strings"
	"testing"
)

func TestUnusedBuildArgs(t *testing.T) {
	t.Parallel()
	df := `ARG GLOBAL
FROM scratch AS other
ARG ONLY_OTHER
FROM scratch
ARG USED
ARG WITH_DEFAULT=x
`
	tests := []struct {
		args map[string]string
		want string
	}{
		{map[string]string{"USED": "1", "WITH_DEFAULT": "y", "GLOBAL": "g"}, ""},
		{map[string]string{"TYPO": "1", "USED": "1", "ALSO": "2"}, "ALSO TYPO"},
		// A stage the target does not need consumes nothing.
		{map[string]string{"ONLY_OTHER": "1"}, "ONLY_OTHER"},
		// What BuildKit uses without an ARG never counts.
		{map[string]string{"HTTP_PROXY": "p", "no_proxy": "x", "BUILDKIT_SANDBOX_HOSTNAME": "h", "SOURCE_DATE_EPOCH": "0", "TARGETARCH": "amd64"}, ""},
	}
	for _, tt := range tests {
		res := mustConvert(t, df, func(o *Options) { o.BuildArgs = tt.args })
		if got := strings.Join(res.UnusedBuildArgs, " "); got != tt.want {
			t.Errorf("build args %v: unused %q, want %q", tt.args, got, tt.want)
		}
	}
}
