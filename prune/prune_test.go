package prune

import (
	"strings"
	"testing"
	"time"
)

func TestParseFilters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      []string
		want    time.Duration
		wantErr string
	}{
		{nil, 0, ""},
		{[]string{"until=24h"}, 24 * time.Hour, ""},
		{[]string{"until=90m", "until=1s"}, time.Second, ""},
		{[]string{"until=yesterday"}, 0, "invalid filter 'until=yesterday'"},
		{[]string{"type=regular"}, 0, "invalid filter 'type'"},
		{[]string{"until"}, 0, "bad format of filter"},
	}
	for _, tt := range tests {
		got, err := ParseFilters(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v: error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%v: %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
