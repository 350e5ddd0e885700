package build

import (
	"io"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/pty"
)

func TestParseOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		typ     string
		dest    string
		attrs   map[string]string
		wantErr string
	}{
		{in: "type=oci,dest=out.tar", typ: "oci", dest: "out.tar", attrs: map[string]string{}},
		{in: "type=oci,dest=dir,tar=false,compression=zstd,compression-level=3", typ: "oci", dest: "dir", attrs: map[string]string{"tar": "false", "compression": "zstd", "compression-level": "3"}},
		{in: "type=docker,dest=x.tar,oci-mediatypes=true,force-compression=true", typ: "docker", dest: "x.tar", attrs: map[string]string{"oci-mediatypes": "true", "force-compression": "true"}},
		{in: `type=image,"name=a:1,b:2",push=true`, typ: "image", attrs: map[string]string{"name": "a:1,b:2", "push": "true"}},
		{in: "type=local,dest=out", typ: "local", dest: "out", attrs: map[string]string{}},
		{in: "out", typ: "local", dest: "out", attrs: map[string]string{}},
		{in: "type=tar,dest=fs.tar", typ: "tar", dest: "fs.tar", attrs: map[string]string{}},
		{in: "type=tar", wantErr: "needs dest"},
		{in: "type=image,dest=x", wantErr: "takes no dest"},
		{in: "type=oci,dest=x,compression=lz4", wantErr: "must be gzip"},
		{in: "type=oci,dest=x,compression=gzip,compression-level=12", wantErr: "levels are 0-9"},
		{in: "type=oci,dest=x,tar=maybe", wantErr: "not a boolean"},
		{in: "type=local,dest=x,compression=zstd", wantErr: "unknown attribute"},
		{in: "type=registry2,dest=x", wantErr: "not supported"},
		{in: "dest=x", wantErr: "type is required"},
		{in: `type=image,"name=a:1,../b"`, wantErr: `name="../b": invalid reference format`},
		{in: "type=oci,dest=x,name=a@sha256:" + strings.Repeat("0", 64), wantErr: "cannot have a digest"},
	}
	for _, tt := range tests {
		o, err := ParseOutputSpec(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if o.Type != tt.typ || o.Dest != tt.dest || len(o.Attrs) != len(tt.attrs) {
			t.Errorf("%s: %+v", tt.in, o)
		}
		for k, v := range tt.attrs {
			if o.Attrs[k] != v {
				t.Errorf("%s: %s=%q, want %q", tt.in, k, o.Attrs[k], v)
			}
		}
	}
}

func TestParseAnnotations(t *testing.T) {
	t.Parallel()
	oci := []OutputSpec{{Type: "oci", Attrs: map[string]string{}}, {Type: "local", Attrs: map[string]string{}}}
	m, err := ParseAnnotations([]string{"a=1", "manifest:b=2=3", "org.opencontainers.image.source=https://x"}, oci)
	if err != nil || m["a"] != "1" || m["b"] != "2=3" || m["org.opencontainers.image.source"] != "https://x" || len(m) != 3 {
		t.Errorf("annotations %v, %v", m, err)
	}
	for _, tt := range []struct {
		vals []string
		outs []OutputSpec
		want string
	}{
		{[]string{"novalue"}, oci, "want KEY=VALUE"},
		{[]string{"index:a=1"}, oci, "only manifest annotations"},
		{[]string{"a=1"}, []OutputSpec{{Type: "docker", Attrs: map[string]string{}}}, "Docker media types"},
	} {
		if _, err := ParseAnnotations(tt.vals, tt.outs); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.vals, err, tt.want)
		}
	}
}

func TestCheckStdoutOutputs(t *testing.T) {
	t.Parallel()
	tarOut := OutputSpec{Type: "tar", Dest: "-"}
	if err := CheckStdoutOutputs([]OutputSpec{tarOut, {Type: "oci", Dest: "-"}}, io.Discard); err == nil || !strings.Contains(err.Error(), "only one") {
		t.Errorf("two outputs to stdout: %v", err)
	}
	if err := CheckStdoutOutputs([]OutputSpec{tarOut}, io.Discard); err != nil {
		t.Errorf("a pipe: %v", err)
	}
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	if err := CheckStdoutOutputs([]OutputSpec{tarOut}, slave); err == nil || !strings.Contains(err.Error(), "terminal") {
		t.Errorf("a terminal as stdout: %v", err)
	}
	for _, bad := range []string{"type=local,dest=-", "type=oci,dest=-,tar=false"} {
		if _, err := ParseOutputSpec(bad); err == nil || !strings.Contains(err.Error(), "stdout") {
			t.Errorf("%s: %v, want a stdout error", bad, err)
		}
	}
}
