package dockerfile

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/llb"
)

// TestSourceDateEpoch: --build-arg wins over the Dockerfile's global ARG
// default; an invalid value is an error (BuildKit's
// testSourceDateEpochDockerfileDefault*).
func TestSourceDateEpoch(t *testing.T) {
	for _, tc := range []struct {
		name, df string
		args     map[string]string
		want     int64 // 0 = no epoch
		err      string
	}{
		{"default", "ARG SOURCE_DATE_EPOCH=1700000001\nFROM scratch\n", nil, 1700000001, ""},
		{"override", "ARG SOURCE_DATE_EPOCH=1700000001\nFROM scratch\n", map[string]string{"SOURCE_DATE_EPOCH": "1700000002"}, 1700000002, ""},
		{"reset", "ARG SOURCE_DATE_EPOCH=1700000001\nFROM scratch\n", map[string]string{"SOURCE_DATE_EPOCH": ""}, 0, ""},
		{"none", "FROM scratch\n", nil, 0, ""},
		{"context of a local build", "FROM scratch\nCOPY Dockerfile /\n", map[string]string{"SOURCE_DATE_EPOCH": "context"}, 0, ""},
		{"invalid default", "ARG SOURCE_DATE_EPOCH=not-a-timestamp\nFROM scratch\n", nil, 0, "invalid SOURCE_DATE_EPOCH: not-a-timestamp"},
		{"invalid arg", "FROM scratch\n", map[string]string{"SOURCE_DATE_EPOCH": "soon"}, 0, "invalid SOURCE_DATE_EPOCH: soon"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Convert(context.Background(), Options{Dockerfile: []byte(tc.df), Filename: "Dockerfile", BuildArgs: tc.args, Resolver: &fakeResolver{}})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.want == 0 && res.SourceDateEpoch != nil:
				t.Errorf("epoch %v, want none", res.SourceDateEpoch)
			case tc.want != 0 && (res.SourceDateEpoch == nil || !res.SourceDateEpoch.Equal(time.Unix(tc.want, 0))):
				t.Errorf("epoch %v, want %d", res.SourceDateEpoch, tc.want)
			}
		})
	}
}

// TestSourceDateEpochContextUnsetsArg: SOURCE_DATE_EPOCH=context of a local
// build resolves to no epoch and, as in BuildKit (setBuildArgValue with
// ""), the arg is removed, so a stage's ARG SOURCE_DATE_EPOCH has no
// value instead of "context".
func TestSourceDateEpochContextUnsetsArg(t *testing.T) {
	df := "FROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo $SOURCE_DATE_EPOCH\n"
	for name, tc := range map[string]struct {
		df   string
		args map[string]string
	}{
		"build arg":      {df, map[string]string{"SOURCE_DATE_EPOCH": "context"}},
		"global default": {"ARG SOURCE_DATE_EPOCH=context\n" + df, nil},
	} {
		t.Run(name, func(t *testing.T) {
			res, err := Convert(context.Background(), Options{Dockerfile: []byte(tc.df), Filename: "Dockerfile", BuildArgs: tc.args, Resolver: newResolver()})
			if err != nil {
				t.Fatal(err)
			}
			if res.SourceDateEpoch != nil {
				t.Errorf("epoch %v, want none", res.SourceDateEpoch)
			}
			op := res.State.Op().(llb.ExecOp)
			for _, kv := range op.Env {
				if strings.HasPrefix(kv, "SOURCE_DATE_EPOCH=") {
					t.Errorf("RUN env has %q, want no SOURCE_DATE_EPOCH", kv)
				}
			}
			if tc.args != nil && tc.args["SOURCE_DATE_EPOCH"] != "context" {
				t.Errorf("the caller's build args were changed: %v", tc.args)
			}
		})
	}
}
