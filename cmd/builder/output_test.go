package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseOutput(t *testing.T) {
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
	}
	for _, tt := range tests {
		o, err := parseOutput(tt.in)
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

// TestHumanAgo: docker's units.HumanDuration plus " ago", hours rounded
// (1h45m is "2 hours", as docker images and docker ps show it).
func TestHumanAgo(t *testing.T) {
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "Less than a second ago"},
		{time.Second, "1 second ago"},
		{30 * time.Second, "30 seconds ago"},
		{90 * time.Second, "About a minute ago"},
		{45 * time.Minute, "45 minutes ago"},
		{time.Hour + 20*time.Minute, "About an hour ago"},
		{time.Hour + 45*time.Minute, "2 hours ago"},
		{47*time.Hour + 40*time.Minute, "2 days ago"},
		{10 * 24 * time.Hour, "10 days ago"},
		{3 * 7 * 24 * time.Hour, "3 weeks ago"},
		{90 * 24 * time.Hour, "3 months ago"},
		{3 * 365 * 24 * time.Hour, "3 years ago"},
	} {
		if got := humanAgo(now, now.Add(-tt.d)); got != tt.want {
			t.Errorf("humanAgo(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := humanAgo(now, time.Time{}); got != "N/A" {
		t.Errorf("humanAgo(zero) = %q, want N/A", got)
	}
}
