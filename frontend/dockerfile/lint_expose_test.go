package dockerfile

import (
	"fmt"
	"strings"
	"testing"
)

func TestLintExpose(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		df   string
		want []string // "Rule:line message"
	}{
		{"lowercase protocols", "FROM busybox\nEXPOSE 80 53/udp 8080/tcp 9000-9001/sctp\n", nil},
		{"proto casing", "FROM busybox\nEXPOSE 80/TCP 53/Udp\n", []string{
			// Warnings of one line are reported sorted by message.
			"ExposeProtoCasing:2 Defined protocol '53/Udp' in EXPOSE instruction should be lowercase",
			"ExposeProtoCasing:2 Defined protocol '80/TCP' in EXPOSE instruction should be lowercase",
		}},
		{"host port", "FROM busybox\nEXPOSE 8080:80\n", []string{
			"ExposeInvalidFormat:2 EXPOSE instruction should not define an IP address or host-port mapping, found '8080:80'",
		}},
		{"ip and proto", "FROM busybox\nEXPOSE 127.0.0.1:8080:80/TCP\n", []string{
			"ExposeProtoCasing:2 Defined protocol '127.0.0.1:8080:80/TCP' in EXPOSE instruction should be lowercase",
			"ExposeInvalidFormat:2 EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:8080:80/TCP'",
		}},
		{"expanded", "FROM busybox\nARG P=443/TCP\nEXPOSE $P\n", []string{
			"ExposeProtoCasing:3 Defined protocol '443/TCP' in EXPOSE instruction should be lowercase",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mustConvert(t, tt.df, nil)
			var got []string
			for _, w := range res.Warnings {
				got = append(got, fmt.Sprintf("%s:%d %s", w.Rule, w.Location.Line, w.Message))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
