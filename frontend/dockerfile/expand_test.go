package dockerfile

import (
	"strings"
	"testing"
)

// TestExpansionForms checks every substitution form of the shell lexer in
// ENV (expanded by the frontend) and that RUN is left to the shell.
func TestExpansionForms(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"${A:-d}", "abcabc"}, {"${U:-d}", "d"}, {"${E:-d}", "d"},
		{"${A-d}", "abcabc"}, {"${U-d}", "d"}, {"${E-d}", ""},
		{"${A:+x}", "x"}, {"${U:+x}", ""}, {"${E:+x}", ""},
		{"${A+x}", "x"}, {"${U+x}", ""}, {"${E+x}", "x"},
		{"${A#a*}", "bcabc"}, {"${A##a*}", ""}, {"${A#*c}", "abc"}, {"${A##*c}", ""},
		{"${A%c*}", "abcab"}, {"${A%%c*}", "ab"}, {"${A%b*}", "abca"},
		{"${A/b/X}", "aXcabc"}, {"${A//b/X}", "aXcaXc"},
		{"$A", "abcabc"}, {"${A}", "abcabc"}, {`\$A`, "$A"}, {"'$A'", "$A"},
	}
	for _, tt := range tests {
		df := "FROM busybox\nARG A=abcabc\nARG E=\nENV R=" + tt.expr + "\nRUN echo " + tt.expr + "\n"
		res := mustConvert(t, df, nil)
		got, _ := envList(res.Config.Config.Env).Get("R")
		if got != tt.want {
			t.Errorf("ENV R=%s: %q, want %q", tt.expr, got, tt.want)
		}
		if h := res.Config.History[len(res.Config.History)-1].CreatedBy; !strings.HasSuffix(h, "echo "+tt.expr+" # buildkit") {
			t.Errorf("RUN was expanded by the frontend: %q", h)
		}
	}
	_, _, err := convertString(t, "FROM busybox\nENV X=\"${NOPE:?must be set}\"\n", nil)
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:2:") || !strings.Contains(err.Error(), "must be set") {
		t.Errorf("${NOPE:?msg}: err = %v", err)
	}
}

func TestRunPlatform(t *testing.T) {
	arm := func(o *Options) { o.RunPlatform = testPlatform; o.Platform.Architecture = "arm64" }
	if _, _, err := convertString(t, "FROM busybox\nRUN true\n", arm); err == nil || !strings.Contains(err.Error(), "Dockerfile:2: RUN cannot execute for platform linux/arm64") {
		t.Errorf("foreign RUN: err = %v", err)
	}
	if _, _, err := convertString(t, "FROM busybox\nCOPY a /\n", arm); err != nil {
		t.Errorf("foreign platform without RUN: %v", err)
	}
	if _, _, err := convertString(t, "FROM busybox\nRUN true\n", func(o *Options) { o.RunPlatform = testPlatform }); err != nil {
		t.Errorf("host RUN: %v", err)
	}
}
