package executor

import (
	"reflect"
	"strings"
	"testing"
)

func TestResolveUser(t *testing.T) {
	const pw = "# comment\nroot:x:0:0:root:/root:/bin/sh\nfoo:x:1000:1001:Foo:/home/foo:/bin/sh\nbad:x:notanumber:1:::\nnohome:x:1500:1500:::/bin/sh\n"
	const gr = "root:x:0:root\nfoo:x:1001:\nwheel:x:10:foo,root\nextra:x:2000:bar, foo\nempty:x:3000:\n"
	for _, tc := range []struct {
		spec    string
		pw, gr  string
		want    ExecUser
		wantErr string
	}{
		{spec: "", pw: pw, gr: gr, want: ExecUser{UID: 0, GID: 0, Groups: []uint32{0, 10}, Home: "/root"}},
		{spec: "", want: ExecUser{Groups: []uint32{0}, Home: "/"}},
		{spec: "foo", pw: pw, gr: gr, want: ExecUser{UID: 1000, GID: 1001, Groups: []uint32{1001, 10, 2000}, Home: "/home/foo"}},
		{spec: "1000", pw: pw, gr: gr, want: ExecUser{UID: 1000, GID: 1001, Groups: []uint32{1001, 10, 2000}, Home: "/home/foo"}},
		{spec: "foo:empty", pw: pw, gr: gr, want: ExecUser{UID: 1000, GID: 3000, Groups: []uint32{3000}, Home: "/home/foo"}},
		{spec: "foo:42", pw: pw, gr: gr, want: ExecUser{UID: 1000, GID: 42, Groups: []uint32{42}, Home: "/home/foo"}},
		{spec: "4242", pw: pw, gr: gr, want: ExecUser{UID: 4242, GID: 0, Groups: []uint32{0}, Home: "/"}},
		{spec: "4242:4343", want: ExecUser{UID: 4242, GID: 4343, Groups: []uint32{4343}, Home: "/"}},
		// A member of its own primary group is listed once.
		{spec: "root", pw: pw, gr: gr, want: ExecUser{UID: 0, GID: 0, Groups: []uint32{0, 10}, Home: "/root"}},
		{spec: "nohome", pw: pw, gr: gr, want: ExecUser{UID: 1500, GID: 1500, Groups: []uint32{1500}, Home: "/"}},
		{spec: "nobody", pw: pw, gr: gr, wantErr: "unable to find user nobody: no matching entries in passwd file"},
		{spec: "nobody", wantErr: "unable to find user nobody: no matching entries in passwd file"},
		{spec: "foo:nogroup", pw: pw, gr: gr, wantErr: "unable to find group nogroup: no matching entries in group file"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ResolveUser(tc.spec, strings.NewReader(tc.pw), strings.NewReader(tc.gr))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		file, path, want, wantErr string
	}{
		{"/abs/x", "", "/abs/x", ""},
		{"./rel", "", "./rel", ""},
		{"nothere", dir, "", "executable file not found in $PATH"},
	} {
		got, err := lookPath(tc.file, tc.path, "/")
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("lookPath(%q) err = %v", tc.file, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("lookPath(%q) = %q, %v; want %q", tc.file, got, err, tc.want)
		}
	}
}
