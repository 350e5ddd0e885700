package dockerfile

import (
	"context"
	"strings"
	"testing"
	"time"
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
