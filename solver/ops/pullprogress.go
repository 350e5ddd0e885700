package ops

import (
	"fmt"
	"io"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// pullLog writes a pull's progress into the FROM step's log as BuildKit's
// plain progress shows it: "sha256:… 1.05MB / 3.40MB" while a layer
// downloads (at most one line a second per layer), "sha256:… 3.40MB /
// 3.40MB 0.2s done" when it is stored, and "extracting sha256:… 0.1s
// done" for each layer unpacked.
type pullLog struct {
	w     io.Writer
	every time.Duration
	mu    sync.Mutex
	start map[digest.Digest]time.Time
	last  map[digest.Digest]time.Time
}

func newPullLog(w io.Writer) *pullLog {
	return &pullLog{w: w, every: time.Second, start: map[digest.Digest]time.Time{}, last: map[digest.Digest]time.Time{}}
}

// progress is a registry.PullProgress.
func (p *pullLog) progress(d digest.Digest, done, total int64, finished bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if _, ok := p.start[d]; !ok || done == 0 {
		p.start[d] = now
	}
	switch {
	case finished:
		fmt.Fprintf(p.w, "%s %s / %s %.1fs done\n", d, decimalBytes(done), decimalBytes(total), now.Sub(p.start[d]).Seconds())
	case now.Sub(p.last[d]) >= p.every:
		p.last[d] = now
		fmt.Fprintf(p.w, "%s %s / %s\n", d, decimalBytes(done), decimalBytes(total))
	}
}

// extracting logs the unpacking of layer d, which fn does.
func (p *pullLog) extracting(d digest.Digest, fn func() error) error {
	fmt.Fprintf(p.w, "extracting %s\n", d)
	start := time.Now()
	err := fn()
	if err == nil {
		fmt.Fprintf(p.w, "extracting %s %.1fs done\n", d, time.Since(start).Seconds())
	}
	return err
}

// decimalBytes formats n as BuildKit's progress does ("3.40MB").
func decimalBytes(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return fmt.Sprintf("%.2f%s", f, units[i])
}
