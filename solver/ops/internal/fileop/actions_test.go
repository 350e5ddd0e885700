package fileop

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/llb"
)

func TestActions(t *testing.T) {
	tests := []struct {
		name    string
		dst     []string
		actions []llb.FileAction
		want    []string
		wantErr string
	}{
		{
			name:    "mkdir with parents",
			actions: []llb.FileAction{{Mkdir: &llb.Mkdir{Path: "/a/b/c", Mode: 0o750, MakeParents: true}}},
			want:    []string{"a d 0750", "a/b d 0750", "a/b/c d 0750"},
		},
		{
			name:    "mkdir without parents fails",
			actions: []llb.FileAction{{Mkdir: &llb.Mkdir{Path: "/a/b", Mode: 0o755}}},
			wantErr: "mkdir /a/b",
		},
		{
			name:    "mkdir existing is fine",
			dst:     []string{"a/ 0700"},
			actions: []llb.FileAction{{Mkdir: &llb.Mkdir{Path: "/a", Mode: 0o755}}},
			want:    []string{"a d 0700"},
		},
		{
			name:    "mkdir through escaping symlink",
			dst:     []string{"w->../../sentinel"},
			actions: []llb.FileAction{{Mkdir: &llb.Mkdir{Path: "/w/new", Mode: 0o755, MakeParents: true}}},
			want:    []string{"sentinel d 0755", "sentinel/new d 0755", "w l ../../sentinel"},
		},
		{
			name: "mkfile then replace",
			actions: []llb.FileAction{
				{Mkdir: &llb.Mkdir{Path: "/etc", Mode: 0o755}},
				{Mkfile: &llb.Mkfile{Path: "/etc/x", Mode: 0o600, Data: []byte("one")}},
				{Mkfile: &llb.Mkfile{Path: "/etc/x", Mode: 0o640, Data: []byte("two")}},
			},
			want: []string{"etc d 0755", "etc/x f 0640 two"},
		},
		{
			name:    "mkfile replaces an escaping symlink",
			dst:     []string{"sentinel/", "x->../../sentinel/secret"},
			actions: []llb.FileAction{{Mkfile: &llb.Mkfile{Path: "/x", Mode: 0o644, Data: []byte("mine")}}},
			want:    []string{"sentinel d 0755", "sentinel/secret f 0644 mine", "x l ../../sentinel/secret"},
		},
		{
			name:    "mkfile on root",
			actions: []llb.FileAction{{Mkfile: &llb.Mkfile{Path: "/", Mode: 0o644}}},
			wantErr: "is a directory",
		},
		{
			name:    "rm",
			dst:     []string{"a/b", "c"},
			actions: []llb.FileAction{{Rm: &llb.Rm{Path: "/a"}}},
			want:    []string{"c f 0644 c"},
		},
		{
			name:    "rm missing",
			actions: []llb.FileAction{{Rm: &llb.Rm{Path: "/nope"}}},
			wantErr: "rm /nope: not found",
		},
		{
			name:    "rm missing allowed",
			dst:     []string{"c"},
			actions: []llb.FileAction{{Rm: &llb.Rm{Path: "/nope", AllowNotFound: true}}},
			want:    []string{"c f 0644 c"},
		},
		{
			name:    "rm wildcard",
			dst:     []string{"a.log", "b.log", "c.txt", "d/e.log"},
			actions: []llb.FileAction{{Rm: &llb.Rm{Path: "/*.log", AllowWildcard: true}}},
			want:    []string{"c.txt f 0644 c.txt", "d d 0755", "d/e.log f 0644 d/e.log"},
		},
		{
			name:    "rm removes the symlink, not its target",
			dst:     []string{"l->../../sentinel"},
			actions: []llb.FileAction{{Rm: &llb.Rm{Path: "/l"}}},
			want:    []string{},
		},
		{
			name:    "rm through an escaping dir symlink stays inside",
			dst:     []string{"l->../../sentinel"},
			actions: []llb.FileAction{{Rm: &llb.Rm{Path: "/l/secret"}}},
			wantErr: "not found",
		},
		{
			name:    "rm dotdot",
			dst:     []string{"c"},
			actions: []llb.FileAction{{Rm: &llb.Rm{Path: "/../sentinel/secret", AllowNotFound: true}}},
			want:    []string{"c f 0644 c"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dst := filepath.Join(base, "dst")
			must(t, os.Mkdir(dst, 0o755))
			check := sentinel(t, base)
			mkTree(t, dst, tc.dst...)
			err := Apply(context.Background(), dst, nil, llb.FileOp{Base: 0, Actions: tc.actions})
			check()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			must(t, err)
			if got := describe(t, dst, false); !equalLists(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestMkdirChown(t *testing.T) {
	requireRoot(t)
	dst := t.TempDir()
	mkTree(t, dst, "etc/passwd=app:x:10:20::/:/bin/sh\n")
	err := Apply(context.Background(), dst, nil, llb.FileOp{Actions: []llb.FileAction{
		{Mkdir: &llb.Mkdir{Path: "/w/x", Mode: 0o755, MakeParents: true, Chown: &llb.Chown{User: "app"}}},
		{Mkfile: &llb.Mkfile{Path: "/w/x/f", Mode: 0o644, Chown: &llb.Chown{User: "3", Group: "4"}}},
	}})
	must(t, err)
	got := describe(t, filepath.Join(dst, "w"), true)
	want := []string{"x d 0755 10:20", "x/f f 0644  3:4"}
	if !equalLists(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
}

func TestApplyBadInput(t *testing.T) {
	c := dockerCopy("/", "a")
	c.Src = 3
	err := Apply(context.Background(), t.TempDir(), nil, llb.FileOp{Actions: []llb.FileAction{{Copy: &c}}})
	if err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("err = %v", err)
	}
	err = Apply(context.Background(), t.TempDir(), nil, llb.FileOp{Actions: []llb.FileAction{{}}})
	if err == nil {
		t.Fatal("empty action accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = Apply(ctx, t.TempDir(), nil, llb.FileOp{Actions: []llb.FileAction{{Mkdir: &llb.Mkdir{Path: "/a"}}}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		spec  string
		old   uint32
		isDir bool
		want  uint32
	}{
		{"0755", 0o600, false, 0o755},
		{"4755", 0o600, false, 0o4755},
		{"u=rwX,go=rX", 0o600, false, 0o644},
		{"u=rwX,go=rX", 0o700, false, 0o755},
		{"u=rwX,go=rX", 0o700, true, 0o755},
		{"+x", 0o644, false, 0o755},
		{"a-w", 0o664, false, 0o444},
		{"g=u", 0o640, false, 0o660},
		{"o=", 0o757, false, 0o750},
		{"u+s", 0o755, false, 0o4755},
		{"+t", 0o777, true, 0o1777},
		{"g-w,o-rwx", 0o777, false, 0o750},
		{"ug+rw,o-r", 0o404, false, 0o660},
	}
	for _, tc := range tests {
		ms, err := parseMode(tc.spec)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if got := ms.apply(tc.old, tc.isDir); got != tc.want {
			t.Errorf("%s on %o = %o, want %o", tc.spec, tc.old, got, tc.want)
		}
	}
	for _, bad := range []string{"99", "17777", "u", "u~x", "u=rq"} {
		if ms, err := parseMode(bad); err == nil {
			t.Errorf("%q parsed: %+v", bad, ms)
		}
	}
}
