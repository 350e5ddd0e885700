package dockerfile

import (
	"slices"
	"strings"
	"testing"

	"github.com/builderdev/builder/llb"
)

func TestProxyEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args map[string]string
		want []string
	}{
		{"none", map[string]string{"FOO": "1"}, nil},
		{"upper", map[string]string{"HTTP_PROXY": "http://p:3128"}, []string{"HTTP_PROXY=http://p:3128", "http_proxy=http://p:3128"}},
		{"lower", map[string]string{"no_proxy": "localhost"}, []string{"NO_PROXY=localhost", "no_proxy=localhost"}},
		{"all kinds in order", map[string]string{
			"all_proxy": "a", "FTP_PROXY": "f", "https_proxy": "s", "Http_Proxy": "h", "NO_PROXY": "n",
		}, []string{
			"HTTP_PROXY=h", "http_proxy=h", "HTTPS_PROXY=s", "https_proxy=s", "FTP_PROXY=f", "ftp_proxy=f",
			"NO_PROXY=n", "no_proxy=n", "ALL_PROXY=a", "all_proxy=a",
		}},
		// Sorted keys: "HTTP_PROXY" < "http_proxy", so the lowercase wins.
		{"both cases", map[string]string{"HTTP_PROXY": "upper", "http_proxy": "lower"}, []string{"HTTP_PROXY=lower", "http_proxy=lower"}},
		{"empty is unset", map[string]string{"HTTP_PROXY": ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := proxyEnv(tt.args); !slices.Equal(got, tt.want) {
				t.Errorf("proxyEnv(%v) = %q, want %q", tt.args, got, tt.want)
			}
		})
	}
}

// TestProxyArgsOutsideDigest: undeclared proxy build args reach RUN through
// ExecOp.ProxyEnv, change neither the digest nor the history, and a
// declared ARG HTTP_PROXY behaves like any other ARG.
func TestProxyArgsOutsideDigest(t *testing.T) {
	t.Parallel()
	const df = "FROM busybox\nRUN wget http://example.com/\n"
	convert := func(df string, args map[string]string) (*llb.Vertex, llb.ExecOp, string) {
		t.Helper()
		res := mustConvert(t, df, func(o *Options) { o.BuildArgs = args })
		op, ok := res.State.Op().(llb.ExecOp)
		if !ok {
			t.Fatalf("last op is %T, want an exec", res.State.Op())
		}
		return res.State, op, res.Config.History[len(res.Config.History)-1].CreatedBy
	}
	plainV, plainOp, plainH := convert(df, nil)
	aV, aOp, aH := convert(df, map[string]string{"HTTP_PROXY": "http://a:3128"})
	bV, bOp, bH := convert(df, map[string]string{"HTTP_PROXY": "http://b:3128", "no_proxy": "x"})
	if plainV.Digest() != aV.Digest() || aV.Digest() != bV.Digest() {
		t.Errorf("proxy args changed the digest: %s %s %s", plainV.Digest(), aV.Digest(), bV.Digest())
	}
	if plainH != aH || aH != bH || strings.Contains(bH, "proxy") || strings.Contains(bH, "PROXY") {
		t.Errorf("proxy args in the history: %q %q %q", plainH, aH, bH)
	}
	if len(plainOp.ProxyEnv) != 0 {
		t.Errorf("ProxyEnv without proxy args: %q", plainOp.ProxyEnv)
	}
	if !slices.Contains(aOp.ProxyEnv, "HTTP_PROXY=http://a:3128") || !slices.Contains(aOp.ProxyEnv, "http_proxy=http://a:3128") {
		t.Errorf("ProxyEnv = %q", aOp.ProxyEnv)
	}
	if !slices.Contains(bOp.ProxyEnv, "no_proxy=x") {
		t.Errorf("ProxyEnv = %q", bOp.ProxyEnv)
	}
	for _, kv := range aOp.Env {
		if strings.Contains(strings.ToLower(kv), "proxy") {
			t.Errorf("an undeclared proxy arg is in Env: %q", kv)
		}
	}

	// Declared: part of Env, the digest and the history, as BuildKit.
	const declared = "FROM busybox\nARG HTTP_PROXY\nRUN wget http://example.com/\n"
	dA, dOp, dH := convert(declared, map[string]string{"HTTP_PROXY": "http://a:3128"})
	dB, _, _ := convert(declared, map[string]string{"HTTP_PROXY": "http://b:3128"})
	if dA.Digest() == dB.Digest() {
		t.Error("a declared ARG HTTP_PROXY does not change the digest")
	}
	if !strings.Contains(dH, "|1 HTTP_PROXY=http://a:3128 ") {
		t.Errorf("declared proxy arg missing from the history: %q", dH)
	}
	if !slices.Contains(dOp.Env, "HTTP_PROXY=http://a:3128") {
		t.Errorf("declared proxy arg missing from Env: %q", dOp.Env)
	}
}
