package dockerfile

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/builderdev/builder/llb"
)

func TestRunSecurity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		flag    string
		allow   bool
		want    llb.SecurityMode
		wantErr string
	}{
		{"default", "", false, llb.SecuritySandbox, ""},
		{"sandbox", "--security=sandbox", false, llb.SecuritySandbox, ""},
		{"insecure allowed", "--security=insecure", true, llb.SecurityInsecure, ""},
		{"insecure not allowed", "--security=insecure", false, "", "--allow security.insecure"},
		{"bogus", "--security=bogus", true, "", `"bogus"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			df := "FROM scratch\nENV A=1\nRUN " + tc.flag + " true\n"
			res, err := Convert(context.Background(), Options{Dockerfile: []byte(df), Filename: "Dockerfile", Resolver: &fakeResolver{}, AllowInsecure: tc.allow})
			if tc.wantErr != "" {
				var fe *Error
				if !errors.As(err, &fe) || fe.Line != 3 || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want an error at line 3 containing %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			op, ok := res.State.Op().(llb.ExecOp)
			if !ok {
				t.Fatalf("last op %T, want exec", res.State.Op())
			}
			if op.Security != tc.want {
				t.Errorf("security %q, want %q", op.Security, tc.want)
			}
		})
	}
	// The default mode leaves the digest of existing graphs unchanged.
	a, err := Convert(context.Background(), Options{Dockerfile: []byte("FROM scratch\nRUN true\n"), Filename: "Dockerfile", Resolver: &fakeResolver{}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Convert(context.Background(), Options{Dockerfile: []byte("FROM scratch\nRUN --security=sandbox true\n"), Filename: "Dockerfile", Resolver: &fakeResolver{}})
	if err != nil {
		t.Fatal(err)
	}
	if a.State.Digest() != b.State.Digest() {
		t.Error("--security=sandbox changed the digest")
	}
}
