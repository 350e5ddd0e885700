package snapshot

import (
	"os"
	"strings"
	"sync"
)

// inUserNS reports whether the process runs in a user namespace other
// than the initial one (a rootless builder). There overlayfs cannot write
// trusted.* xattrs: it is mounted with userxattr and marks opaque
// directories with user.overlay.opaque instead (Linux 5.11 and later).
var inUserNS = sync.OnceValue(func() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
})

// opaqueXattr is the xattr overlayfs marks an opaque upper directory with.
func opaqueXattr() string {
	if inUserNS() {
		return "user.overlay.opaque"
	}
	return "trusted.overlay.opaque"
}
