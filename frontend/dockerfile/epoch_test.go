package dockerfile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/llb"
)

// TestSourceDateEpoch: --build-arg wins over the Dockerfile's global ARG
// default; an invalid value is an error (BuildKit's
// testSourceDateEpochDockerfileDefault*).
func TestSourceDateEpoch(t *testing.T) {
	t.Parallel()
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
			t.Parallel()
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
	t.Parallel()
	df := "FROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo $SOURCE_DATE_EPOCH\n"
	for name, tc := range map[string]struct {
		df   string
		args map[string]string
	}{
		"build arg":      {df, map[string]string{"SOURCE_DATE_EPOCH": "context"}},
		"global default": {"ARG SOURCE_DATE_EPOCH=context\n" + df, nil},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
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

// TestSourceDateEpochOfName: SOURCE_DATE_EPOCH=<name> takes the time of a
// named context or of a source-only stage's one HTTP ADD (BuildKit's
// testSourceDateEpochStage* and testSourceDateEpochNamedContextHTTP*);
// any other stage is an error naming the instruction; the resolved
// seconds replace the name in the args a stage sees.
func TestSourceDateEpochOfName(t *testing.T) {
	t.Parallel()
	const tm = 1700000402
	src := "ARG SOURCE_DATE_EPOCH=mysource\nARG SRV=http://srv\nFROM scratch AS mysource\nARG F=src.tar\nADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 ${SRV}/$F /\n"
	tail := "FROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo -n \"$SOURCE_DATE_EPOCH\" >/epoch\n"
	for _, tc := range []struct {
		name, df string
		args     map[string]string
		named    map[string]NamedContext
		wantOp   llb.HTTPOp // the source asked for
		want     int64      // 0 = no epoch
		err      string
	}{
		{name: "stage", df: src + tail, want: tm,
			wantOp: llb.HTTPOp{URL: "http://srv/src.tar", Filename: "src.tar", Checksum: "sha256:0000000000000000000000000000000000000000000000000000000000000000"}},
		{name: "stage arg from --build-arg", df: src + tail, args: map[string]string{"F": "other.tar"}, want: tm,
			wantOp: llb.HTTPOp{URL: "http://srv/other.tar", Filename: "other.tar", Checksum: "sha256:0000000000000000000000000000000000000000000000000000000000000000"}},
		{name: "override", df: src + "FROM scratch\nCOPY Dockerfile .\n", args: map[string]string{"SOURCE_DATE_EPOCH": "1700000502"}, want: 1700000502},
		{name: "name as build arg", df: "FROM scratch AS Src\nADD http://srv/x.tar /\n" + tail, args: map[string]string{"SOURCE_DATE_EPOCH": "src"}, want: tm,
			wantOp: llb.HTTPOp{URL: "http://srv/x.tar", Filename: "x.tar"}},
		{name: "named context", df: "ARG SOURCE_DATE_EPOCH=mysource\n" + tail, named: map[string]NamedContext{"mysource": {HTTP: "http://srv/src.tar"}}, want: tm,
			wantOp: llb.HTTPOp{URL: "http://srv/src.tar", Filename: "context"}},
		{name: "named local context has no time", df: "ARG SOURCE_DATE_EPOCH=mysource\n" + tail, named: map[string]NamedContext{"mysource": {Local: "context:mysource"}}},
		{name: "invalid", df: "ARG SOURCE_DATE_EPOCH=mysource\nFROM scratch AS mysource\nCOPY Dockerfile /Dockerfile\nFROM scratch\n",
			err: "Dockerfile:2: SOURCE_DATE_EPOCH stage does not meet source-only requirements: unsupported COPY instruction"},
		{name: "not scratch", df: "ARG SOURCE_DATE_EPOCH=s\nFROM busybox AS s\nADD http://srv/x /\nFROM scratch\n", err: "SOURCE_DATE_EPOCH stage must use FROM scratch"},
		{name: "two ADDs", df: "ARG SOURCE_DATE_EPOCH=s\nFROM scratch AS s\nADD http://srv/x /\nADD http://srv/y /\nFROM scratch\n", err: "exactly one remote ADD"},
		{name: "no ADD", df: "ARG SOURCE_DATE_EPOCH=s\nFROM scratch AS s\nFROM scratch\n", err: "exactly one remote ADD"},
		{name: "local ADD", df: "ARG SOURCE_DATE_EPOCH=s\nFROM scratch AS s\nADD foo /\nFROM scratch\n", err: "must be a single HTTP(S) ADD"},
		{name: "unknown name", df: "FROM scratch\n", args: map[string]string{"SOURCE_DATE_EPOCH": "nostage"}, err: "invalid SOURCE_DATE_EPOCH: nostage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var asked []llb.HTTPOp
			epoch := func(_ context.Context, op llb.HTTPOp) (*time.Time, error) {
				asked = append(asked, op)
				v := time.Unix(tm, 0).UTC()
				return &v, nil
			}
			res, err := Convert(context.Background(), Options{Dockerfile: []byte(tc.df), Filename: "Dockerfile",
				BuildArgs: tc.args, NamedContexts: tc.named, Resolver: newResolver(), SourceEpoch: epoch})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantOp.URL != "" && (len(asked) != 1 || asked[0] != tc.wantOp) {
				t.Errorf("sources asked %+v, want %+v", asked, tc.wantOp)
			}
			if tc.want == 0 {
				if res.SourceDateEpoch != nil {
					t.Errorf("epoch %v, want none", res.SourceDateEpoch)
				}
				return
			}
			if res.SourceDateEpoch == nil || res.SourceDateEpoch.Unix() != tc.want {
				t.Fatalf("epoch %v, want %d", res.SourceDateEpoch, tc.want)
			}
			if strings.Contains(tc.df, "RUN echo") {
				op := res.State.Op().(llb.ExecOp)
				if !slices.Contains(op.Env, fmt.Sprintf("SOURCE_DATE_EPOCH=%d", tc.want)) {
					t.Errorf("RUN env %v, want SOURCE_DATE_EPOCH=%d", op.Env, tc.want)
				}
			}
		})
	}
}
