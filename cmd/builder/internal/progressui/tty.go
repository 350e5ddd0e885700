package progressui

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

const (
	// redrawInterval throttles the live view to ten frames a second.
	redrawInterval = 100 * time.Millisecond
	// liveLogLines is how many output lines of a running step the live view
	// shows.
	liveLogLines = 6
)

// liveState is the tty renderer's state.
type liveState struct {
	dirty bool
	lines int // lines of the last frame, to move the cursor back over
	stop  chan struct{}
	done  chan struct{}
}

// startLive starts the goroutine that redraws the view.
func (d *Display) startLive() {
	stop, done := make(chan struct{}), make(chan struct{})
	d.live.stop, d.live.done = stop, done
	go func() {
		defer close(done)
		t := time.NewTicker(redrawInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d.mu.Lock()
				if !d.closed && (d.live.dirty || d.anyRunning()) {
					d.redraw(false)
				}
				d.mu.Unlock()
			}
		}
	}()
}

// stopLive stops the redraw goroutine; it is safe to call more than once.
func (d *Display) stopLive() {
	d.mu.Lock()
	stop, done := d.live.stop, d.live.done
	d.live.stop = nil
	d.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

func (d *Display) anyRunning() bool {
	for _, v := range d.order {
		if v.isStarted() && !v.isComplete() {
			return true
		}
	}
	return false
}

// redraw replaces the last frame with the current state. The final frame
// is drawn in full; live frames fit the terminal's height.
func (d *Display) redraw(final bool) {
	lines := d.frame(final)
	var b bytes.Buffer
	if d.live.lines > 0 {
		fmt.Fprintf(&b, "\x1b[%dA\r", d.live.lines)
	}
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\x1b[K\n")
	}
	b.WriteString("\x1b[J")
	d.write(b.Bytes())
	d.live.lines = len(lines)
	d.live.dirty = false
}

// frame returns the lines of one view: a header, then each vertex that has
// started with its state and time, and the last output lines of the running
// ones. A live frame that does not fit the terminal leaves out the oldest
// finished vertices first.
func (d *Display) frame(final bool) []string {
	now := d.now()
	width := d.width - 1 // never write into the last column: it wraps on some terminals
	done, total := 0, 0
	failed := false
	var blocks []block
	for _, v := range d.order {
		total++
		if v.isComplete() {
			done++
			failed = failed || v.err != nil
		}
		if !v.isStarted() && !v.isComplete() {
			continue
		}
		blocks = append(blocks, block{lines: d.vertexLines(v, now, width, final), running: !v.isComplete()})
	}
	state := ""
	if final {
		state = " FINISHED"
		if failed {
			state = " FAILED"
		}
	}
	header := truncate(fmt.Sprintf("[+] Building %s (%d/%d)%s", seconds(now.Sub(d.start)), done, total, state), width)
	lines := []string{header}
	if !final {
		return append(lines, fitHeight(blocks, d.height-2)...)
	}
	for _, b := range blocks {
		lines = append(lines, b.lines...)
	}
	return lines
}

// vertexLines is one vertex's part of a frame.
func (d *Display) vertexLines(v *vertex, now time.Time, width int, final bool) []string {
	prefix := ""
	switch {
	case v.err != nil:
		if _, canceled := errorText(v.err); canceled {
			prefix = "CANCELED "
		} else {
			prefix = "ERROR "
		}
	case v.cached:
		prefix = "CACHED "
	}
	var tm string
	switch {
	case v.isComplete():
		tm = seconds(v.wall())
	default:
		tm = seconds(now.Sub(v.started))
	}
	if v.stats != nil && v.isComplete() && v.err == nil && !v.cached {
		tm = usageOf(v.stats).String() + "  " + tm
	}
	name := " => " + prefix + sanitize(v.name)
	room := width - len([]rune(tm)) - 1
	name = truncate(name, room)
	pad := max(room-len([]rune(name)), 0)
	lines := []string{name + strings.Repeat(" ", pad+1) + tm}
	if v.cacheMiss != "" && !v.cached {
		lines = append(lines, truncate(" => => "+sanitize(v.cacheMiss), width))
	}
	if !final && !v.isComplete() {
		tail := v.tail
		if len(tail) > liveLogLines {
			tail = tail[len(tail)-liveLogLines:]
		}
		for _, l := range tail {
			lines = append(lines, truncate(" => => # "+sanitize(v.format(l)), width))
		}
	}
	return lines
}

// block is one vertex's lines in a frame.
type block struct {
	lines   []string
	running bool
}

// fitHeight drops the blocks of finished vertices, oldest first, and then
// lines from the top until the blocks fit in height lines.
func fitHeight(blocks []block, height int) []string {
	height = max(height, 1)
	count := 0
	for _, b := range blocks {
		count += len(b.lines)
	}
	kept := blocks[:0:0]
	for _, b := range blocks {
		if count > height && !b.running {
			count -= len(b.lines)
			continue
		}
		kept = append(kept, b)
	}
	var flat []string
	for _, b := range kept {
		flat = append(flat, b.lines...)
	}
	if len(flat) > height {
		flat = flat[len(flat)-height:]
	}
	return flat
}

// finishLive draws the final frame and then the last output lines of each
// failed step.
func (d *Display) finishLive() {
	d.redraw(true)
	for _, v := range d.order {
		if v.err == nil {
			continue
		}
		if _, canceled := errorText(v.err); canceled {
			continue
		}
		d.printf("------\n > %s:\n", v.name)
		for _, l := range v.tail {
			d.printf("%s\n", v.format(l))
		}
		d.printf("------\n")
		text, _ := errorText(v.err)
		d.printf("%s\n", text)
	}
}
