package dockerfile

import (
	"sort"
	"strings"
)

// proxyArgs are the build args BuildKit treats as proxy settings, in the
// order their variables are added to a RUN's environment.
var proxyArgs = []string{"http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy"}

// proxyEnv is the environment the proxy build args (HTTP_PROXY,
// https_proxy, ... in any case) give every RUN, as BuildKit's llb.WithProxy:
// each set value in upper and lower case. They reach RUN without an ARG
// declaration, but stay out of the digest (llb.ExecOp.ProxyEnv) and of the
// history unless declared with ARG. When a name is given in several cases,
// the last in sorted key order wins, as in BuildKit.
func proxyEnv(buildArgs map[string]string) []string {
	keys := make([]string, 0, len(buildArgs))
	for k := range buildArgs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := map[string]string{}
	for _, k := range keys {
		for _, p := range proxyArgs {
			if strings.EqualFold(k, p) {
				vals[p] = buildArgs[k]
			}
		}
	}
	var out []string
	for _, p := range proxyArgs {
		if v := vals[p]; v != "" {
			out = append(out, strings.ToUpper(p)+"="+v, p+"="+v)
		}
	}
	return out
}
