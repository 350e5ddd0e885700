package progressui

import (
	"fmt"
	"strings"
	"time"

	"github.com/builderdev/builder/solver"
	"github.com/docker/go-units"
)

// seconds formats d as "3.2s".
func seconds(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// bytesIEC formats n with binary units as docker does (go-units
// BytesSize): "512B", "4KiB", "212MiB", "1.5GiB".
func bytesIEC(n uint64) string { return units.BytesSize(float64(n)) }

// usage is the resource use of one or more steps.
type usage struct {
	cpu time.Duration
	mem uint64 // peak
	io  uint64 // read + written
}

func usageOf(s *solver.Stats) usage {
	return usage{cpu: s.CPUUser + s.CPUSystem, mem: s.MemoryPeak, io: s.IORead + s.IOWrite}
}

// String formats u as "cpu 5.1s · mem 212MiB peak · io 48MiB".
func (u usage) String() string {
	return fmt.Sprintf("cpu %s · mem %s peak · io %s", seconds(u.cpu), bytesIEC(u.mem), bytesIEC(u.io))
}

// sanitize makes a log line safe to draw in a fixed-width live view: tabs
// become spaces and other control characters (carriage returns, escape
// sequences' ESC) are dropped.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteString("    ")
		case r < 0x20 || r == 0x7f:
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// truncate cuts s to at most width runes, ending with "…" when cut.
func truncate(s string, width int) string {
	if width <= 0 {
		return ""
	}
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	return string(r[:width-1]) + "…"
}
