package dockerfile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/builderdev/builder/llb"
)

// slowFirstResolver fails "first" after 30 ms, or when its context is
// cancelled, and everything else at once.
type slowFirstResolver struct{}

func (slowFirstResolver) ResolveImageConfig(ctx context.Context, ref string, _ llb.Platform) (string, string, []byte, error) {
	if ref == "first" {
		select {
		case <-time.After(30 * time.Millisecond):
		case <-ctx.Done():
			return "", "", nil, ctx.Err()
		}
	}
	return "", "", nil, errors.New("not found")
}

// TestPrefetchReportsFirstStage: when the images of several stages cannot
// be resolved, the error names the first of those stages in the
// Dockerfile, whichever failed first.
func TestPrefetchReportsFirstStage(t *testing.T) {
	t.Parallel()
	df := "FROM first AS a\nFROM second AS b\nFROM scratch\nCOPY --from=b / /\nCOPY --from=a / /\n"
	for range 3 {
		_, err := Convert(context.Background(), Options{Dockerfile: []byte(df), Filename: "Dockerfile", Platform: testPlatform, Resolver: slowFirstResolver{}})
		if err == nil || !strings.Contains(err.Error(), "Dockerfile:1:") || !strings.Contains(err.Error(), "resolving image first: not found") {
			t.Fatalf("error %v, want the one of line 1", err)
		}
	}
	// A stage cancelled by another's failure that resolves when asked
	// again is not the error.
	df = "FROM busybox AS a\nFROM second AS b\nFROM scratch\nCOPY --from=b / /\nCOPY --from=a / /\n"
	_, err := Convert(context.Background(), Options{Dockerfile: []byte(df), Filename: "Dockerfile", Platform: testPlatform, Resolver: cancelledOnce{next: newResolver(), asked: new(atomic.Bool)}})
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:2:") || !strings.Contains(err.Error(), "second: not found") || strings.Contains(err.Error(), "busybox") {
		t.Fatalf("error %v, want the one of line 2 alone", err)
	}
}

// cancelledOnce answers busybox only after its context is cancelled the
// first time, as a slow registry does when another stage fails, with an
// error that tells the cancellation's cause but does not wrap it.
type cancelledOnce struct {
	next  ImageResolver
	asked *atomic.Bool
}

func (c cancelledOnce) ResolveImageConfig(ctx context.Context, ref string, p llb.Platform) (string, string, []byte, error) {
	if ref == "busybox" && c.asked.CompareAndSwap(false, true) {
		<-ctx.Done()
		// As net/http reports it: the cause, not context.Canceled.
		return "", "", nil, fmt.Errorf("Get \"http://reg/v2/\": %v", context.Cause(ctx))
	}
	return c.next.ResolveImageConfig(ctx, ref, p)
}
