package progressui

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

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
// become spaces, terminal control sequences and other control characters
// are dropped (stripControl).
func sanitize(s string) string {
	return strings.ReplaceAll(stripControl(s), "\t", "    ")
}

// stripControl removes terminal control sequences from a line of a step's
// output (colours, cursor moves, title changes: ESC [ ... final, ESC ]
// ... BEL or ESC \, other ESC sequences, 8-bit C1 controls) and every
// other control character but tab, so that a RUN cannot move the cursor,
// clear the screen or retitle the terminal of whoever reads the log.
func stripControl(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == 0x1b:
			i = skipEscape(s, i)
			continue
		case c == '\t':
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
		case c >= 0x80:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == 0x9b { // C1 CSI
				i = skipCSI(s, i+n)
				continue
			}
			if r >= 0x80 && r <= 0x9f {
				i += n
				continue
			}
			b.WriteString(s[i : i+n])
			i += n
			continue
		default:
			b.WriteByte(c)
		}
		i++
	}
	return b.String()
}

// skipEscape returns the index after the escape sequence at s[i] (ESC).
func skipEscape(s string, i int) int {
	i++
	if i >= len(s) {
		return i
	}
	switch c := s[i]; {
	case c == '[':
		return skipCSI(s, i+1)
	case c == ']' || c == 'P' || c == '_' || c == '^':
		// OSC, DCS, APC, PM: up to BEL or ST (ESC \).
		for i++; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return i
	default:
		// ESC, intermediates, one final byte.
		for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
			i++
		}
		return min(i+1, len(s))
	}
}

// skipCSI returns the index after a control sequence whose parameters
// start at s[i].
func skipCSI(s string, i int) int {
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x3f {
		i++
	}
	return min(i+1, len(s))
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
