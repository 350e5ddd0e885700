package dockerfile

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		df   string
		args map[string]string
		want []string // "Rule:line" in order found
	}{
		{"clean", "FROM busybox\nCMD [\"sh\"]\n", nil, nil},
		{"json args", "FROM busybox\nCMD echo hi\nENTRYPOINT top\n", nil, []string{"JSONArgsRecommended:2", "JSONArgsRecommended:3"}},
		{"json args after shell", "FROM busybox\nSHELL [\"/bin/sh\", \"-c\"]\nCMD echo hi\n", nil, nil},
		{"maintainer", "FROM busybox\nMAINTAINER me\n", nil, []string{"MaintainerDeprecated:2"}},
		{"stage casing", "FROM busybox AS Build\n", nil, []string{"StageNameCasing:1"}},
		{"from as casing", "FROM busybox as build\n", nil, []string{"FromAsCasing:1"}},
		{"instruction casing", "FROM busybox\nrun true\nRUN true\n", nil, []string{"ConsistentInstructionCasing:2"}},
		{"duplicate stage", "FROM busybox AS a\nFROM busybox AS a\n", nil, []string{"DuplicateStageName:2"}},
		{"reserved stage", "FROM busybox AS scratch\n", nil, []string{"ReservedStageName:1"}},
		{"legacy env", "FROM busybox\nENV A b\n", nil, []string{"LegacyKeyValueFormat:2"}},
		{"secret env", "FROM busybox\nENV DB_PASSWORD=x\nARG PUBLIC_KEY=y\n", nil, []string{"SecretsUsedInArgOrEnv:2"}},
		{"relative workdir", "FROM busybox\nWORKDIR app\nWORKDIR sub\n", nil, []string{"WorkdirRelativePath:2"}},
		{"once", "FROM busybox\nCMD [\"a\"]\nCMD [\"b\"]\n", nil, []string{"MultipleInstructionsDisallowed:2"}},
		{"undefined var", "FROM busybox\nARG DECLARED\nENV A=$NOPE B=$DECLARED C=$PATH\n", nil, []string{"UndefinedVar:3"}},
		{"undefined arg in from", "FROM ${IMG:-busybox}\n", nil, []string{"UndefinedArgInFrom:1"}},
		{"invalid default arg", "ARG IMG\nFROM ${IMG}\n", map[string]string{"IMG": "busybox"}, []string{"InvalidDefaultArgInFrom:2"}},
		{"redundant platform", "FROM --platform=$TARGETPLATFORM busybox\n", nil, []string{"RedundantTargetPlatform:1"}},
		{"const platform", "FROM --platform=linux/amd64 busybox\n", nil, []string{"FromPlatformFlagConstDisallowed:1"}},
		{"const platform named", "FROM --platform=linux/amd64 busybox AS build-amd64\n", nil, nil},
		{"empty continuation", "FROM busybox\nRUN echo a \\\n\n  b\n", nil, []string{"NoEmptyContinuation:4"}},
		{"skip by directive", "# check=skip=JSONArgsRecommended\nFROM busybox\nCMD echo hi\n", nil, nil},
		{"skip all by arg", "FROM busybox\nCMD echo hi\n", map[string]string{checkArg: "skip=all"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var streamed int
			res := mustConvert(t, tt.df, func(o *Options) {
				o.BuildArgs = tt.args
				o.Warn = func(Warning) { streamed++ }
			})
			var got []string
			for _, w := range res.Warnings {
				got = append(got, fmt.Sprintf("%s:%d", w.Rule, w.Location.Line))
				if w.URL == "" || w.Message == "" || w.Location.File != "Dockerfile" {
					t.Errorf("incomplete warning %+v", w)
				}
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("warnings %v, want %v", got, tt.want)
			}
			if streamed != len(res.Warnings) {
				t.Errorf("Warn called %d times for %d warnings", streamed, len(res.Warnings))
			}
		})
	}
}

func TestLintShort(t *testing.T) {
	t.Parallel()
	res := mustConvert(t, "FROM busybox\nCMD echo hi\n", nil)
	if len(res.Warnings) != 1 {
		t.Fatalf("warnings %v", res.Warnings)
	}
	want := "JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 2)"
	if got := res.Warnings[0].Short(); got != want {
		t.Errorf("Short() = %q, want %q", got, want)
	}
}

func TestLintErrorDirective(t *testing.T) {
	t.Parallel()
	_, _, err := convertString(t, "# check=error=true\nFROM busybox\nCMD echo hi\n", nil)
	var de *Error
	if !errors.As(err, &de) || de.Line != 3 || !strings.Contains(err.Error(), "lint violation found for rules: JSONArgsRecommended") {
		t.Fatalf("err = %v, want a located lint violation on line 3", err)
	}
	// Skipped rules never fail the build.
	if _, _, err := convertString(t, "# check=error=true;skip=JSONArgsRecommended\nFROM busybox\nCMD echo hi\n", nil); err != nil {
		t.Fatal(err)
	}
}

func TestAllStages(t *testing.T) {
	t.Parallel()
	df := "FROM busybox AS unused\nENV X=$NOPE\nFROM busybox\nCMD [\"sh\"]\n"
	res := mustConvert(t, df, nil)
	if len(res.Warnings) != 0 {
		t.Fatalf("unneeded stage was checked: %v", res.Warnings)
	}
	res = mustConvert(t, df, func(o *Options) { o.AllStages = true })
	if len(res.Warnings) != 1 || res.Warnings[0].Rule != "UndefinedVar" {
		t.Fatalf("warnings %v, want UndefinedVar in the unused stage", res.Warnings)
	}
}

func TestSyntaxDirective(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		syntax string
		ok     bool
	}{
		{"docker/dockerfile:1", true},
		{"docker/dockerfile:1.7", true},
		{"docker/dockerfile:1.7.1-labs", true},
		{"docker.io/docker/dockerfile:1", true},
		{"docker/dockerfile", true},
		{"docker/dockerfile:1@sha256:" + strings.Repeat("a", 64), true},
		{"docker/dockerfile-upstream:master", false},
		{"tonistiigi/dockerfile:runmount", false},
		{"docker/dockerfile:0.9", false},
	} {
		_, _, err := convertString(t, "# syntax="+tt.syntax+"\nFROM busybox\n", nil)
		if (err == nil) != tt.ok {
			t.Errorf("syntax=%s: err = %v, want ok=%v", tt.syntax, err, tt.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "Dockerfile:1:") || !strings.Contains(err.Error(), "external frontends are not supported")) {
			t.Errorf("syntax=%s: error %q", tt.syntax, err)
		}
	}
}

func TestUnknownInstructionHint(t *testing.T) {
	t.Parallel()
	for df, want := range map[string]string{
		"FROM busybox\nRUNN true\n":   "Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)",
		"FROM busybox\ncopyy a b\n":   "Dockerfile:2: unknown instruction: copyy (did you mean COPY?)",
		"FROM busybox\nXYZZY a b\n":   "Dockerfile:2: unknown instruction: XYZZY",
		"FROM busybox\nENTRYPONT a\n": "Dockerfile:2: unknown instruction: ENTRYPONT (did you mean ENTRYPOINT?)",
	} {
		_, _, err := convertString(t, df, nil)
		if err == nil || err.Error() != want {
			t.Errorf("%q: err = %v, want %q", df, err, want)
		}
	}
}

// TestLintBuildKitFidelity covers the build-check differences of issue 10
// #15, each as BuildKit's dockerfile_check_test.go has it.
func TestLintBuildKitFidelity(t *testing.T) {
	t.Parallel()
	secrets := `# check=skip=InvalidDefinitionDescription

FROM scratch
ARG SECRET_PASSPHRASE
ENV SUPER_Secret=foo
ENV password=bar secret=baz
ARG super_duper_secret_token=foo auth=bar
ENV apikey=bar sunflower=foo
ENV git_key=
ENV PUBLIC_KEY=
ARG public_token
ARG SECRET_PASSPHRASE_FILE
ENV password_file=bar secret_File=baz
ARG AUTH_MODULE_VERSION
# check=skip=SecretsUsedInArgOrEnv // allow secret in environment
ENV password=bar
# check=skip=SecretsUsedInArgOrEnv // allow secret in arg
ARG password
# check=skip=all // is local to only this instruction
ENV alternate_password=bar
# check=skip=all // is local to only this instruction
ARG alternate_password
`
	tests := []struct {
		name, df string
		all      bool
		want     []string // "Rule:line" sorted
	}{
		{"testSecretsUsedInArgOrEnv", secrets, false, []string{
			"SecretsUsedInArgOrEnv:4", "SecretsUsedInArgOrEnv:5", "SecretsUsedInArgOrEnv:6", "SecretsUsedInArgOrEnv:6",
			"SecretsUsedInArgOrEnv:7", "SecretsUsedInArgOrEnv:7", "SecretsUsedInArgOrEnv:8", "SecretsUsedInArgOrEnv:9"}},
		{"legacy key value skipped per instruction", "FROM scratch\n# check=skip=LegacyKeyValueFormat\nENV A b\nLABEL x y\n", false,
			[]string{"LegacyKeyValueFormat:4"}},
		{"unbuilt stage not linted", "FROM busybox AS unused\nCMD echo hi\nENV A b\nWORKDIR rel\nFROM busybox\nCMD [\"a\"]\n", false, nil},
		{"unbuilt stage linted with --check", "FROM busybox AS unused\nCMD echo hi\nENV A b\nWORKDIR rel\nFROM busybox\nCMD [\"a\"]\n", true,
			[]string{"JSONArgsRecommended:2", "LegacyKeyValueFormat:3", "WorkdirRelativePath:4"}},
		{"UndefinedArgInFrom with a declared ARG without value", "ARG DEBUG\nFROM scra${DEBUG:-tch}\n", false, nil},
		{"WorkdirRelativePath after a parent stage's WORKDIR", "FROM busybox AS base\nWORKDIR /app\nFROM base\nWORKDIR sub\n", false, nil},
		{"JSONArgsRecommended not with a base SHELL", "FROM busybox AS base\nSHELL [\"/bin/bash\", \"-c\"]\nFROM base\nCMD echo hi\n", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := mustConvert(t, tt.df, func(o *Options) { o.AllStages = tt.all })
			var got []string
			for _, w := range res.Warnings {
				got = append(got, fmt.Sprintf("%s:%d", w.Rule, w.Location.Line))
			}
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("warnings %v, want %v", got, tt.want)
			}
		})
	}
}

// TestUndefinedVarSuggestion: "did you mean $PATH?" as BuildKit's
// suggest.Search (distance below 3).
func TestUndefinedVarSuggestion(t *testing.T) {
	t.Parallel()
	res := mustConvert(t, "FROM busybox\nENV A=$PAHT\n", nil)
	if len(res.Warnings) != 1 || res.Warnings[0].Message != "Usage of undefined variable '$PAHT' (did you mean $PATH?)" {
		t.Fatalf("warnings %+v", res.Warnings)
	}
}
