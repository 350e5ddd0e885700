package run

import (
	"fmt"
	"os"
	"strings"
)

// ParseEnv reads docker run's -e values: K=V, or a bare K that takes its
// value from the environment (and is skipped when unset there).
func ParseEnv(values []string) ([]string, error) {
	var out []string
	for _, e := range values {
		k, _, ok := strings.Cut(e, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid argument %q for -e: missing name", e)
		}
		if !ok {
			v, set := os.LookupEnv(k)
			if !set {
				continue
			}
			e = k + "=" + v
		}
		out = append(out, e)
	}
	return out, nil
}
