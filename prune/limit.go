package prune

import (
	"fmt"
	"os"
	"strings"

	units "github.com/docker/go-units"
	"golang.org/x/sys/unix"
)

// LimitEnv sets the default GC limit (builder build --gc-limit).
const LimitEnv = "BUILDER_GC_LIMIT"

// maxDefaultLimit caps the default limit (as BuildKit's default GC
// policy keeps at most 10% of the disk, or 20 GB... whichever is smaller).
const maxDefaultLimit = 20e9

// Limit returns the root size above which a build collects garbage:
// flag, else $BUILDER_GC_LIMIT, else the smaller of 10% of the root's
// filesystem and 20 GB. "0" turns the automatic GC off (-1).
func Limit(flag, root string) (int64, error) {
	v, from := flag, "--gc-limit"
	if v == "" {
		v, from = os.Getenv(LimitEnv), LimitEnv
	}
	if v != "" {
		n, err := units.RAMInBytes(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid %s %q: want a size such as 20g or 500MB (0 turns the automatic GC off)", from, v)
		}
		if n == 0 {
			return -1, nil
		}
		return n, nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return maxDefaultLimit, nil
	}
	return min(int64(st.Blocks)*int64(st.Bsize)/10, maxDefaultLimit), nil
}
