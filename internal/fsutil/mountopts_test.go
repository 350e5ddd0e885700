package fsutil

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts  []string
		flags uintptr
		prop  uintptr
		data  string
	}{
		{nil, 0, 0, ""},
		{[]string{"rbind", "ro"}, unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY, 0, ""},
		{[]string{"ro", "rw"}, 0, 0, ""},
		{[]string{"nosuid", "size=1m", "mode=755", "rprivate"}, unix.MS_NOSUID, unix.MS_PRIVATE | unix.MS_REC, "size=1m,mode=755"},
		{[]string{"lowerdir=/a:/b", "upperdir=/u", "workdir=/w"}, 0, 0, "lowerdir=/a:/b,upperdir=/u,workdir=/w"},
	} {
		flags, prop, data := ParseMountOptions(tc.opts)
		if flags != tc.flags || prop != tc.prop || data != tc.data {
			t.Errorf("ParseMountOptions(%v) = %#x, %#x, %q; want %#x, %#x, %q", tc.opts, flags, prop, data, tc.flags, tc.prop, tc.data)
		}
	}
}
