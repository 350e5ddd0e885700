package progressui

// plainState is the plain printer's position in its output.
type plainState struct {
	current   *vertex // the vertex whose block is open, nil between blocks
	nextIndex int
	notFirst  bool
}

// plainStatus prints what a status change shows: the final line of a
// completed vertex, the header of a started one when no other block is
// open, or output that waited for the vertex's first status.
func (d *Display) plainStatus(v *vertex) {
	switch {
	case v.isComplete() && !v.final:
		d.switchTo(v)
		d.printPending(v)
		d.printFinal(v)
		d.plain.current = nil
		d.activateOpen()
	case v.isStarted() && !v.isComplete() && d.plain.current == nil:
		d.switchTo(v)
		d.printPending(v)
	default:
		d.plainLogs(v)
	}
}

// plainLogs prints the vertex's complete output lines. Output of a vertex
// whose status has not come yet waits for its name.
func (d *Display) plainLogs(v *vertex) {
	if len(v.pending) == 0 || !v.named {
		return
	}
	d.switchTo(v)
	d.printPending(v)
	if v.final {
		// Output that came after the final line closes its block again.
		d.plain.current = nil
	}
}

// switchTo makes v's block the open one, closing the open block with
// "#N ..." and printing v's header.
func (d *Display) switchTo(v *vertex) {
	p := &d.plain
	if p.current == v {
		return
	}
	if p.current != nil {
		d.printf("#%d ...\n", p.current.index)
	}
	if p.notFirst {
		d.printf("\n")
	}
	p.notFirst = true
	if v.index == 0 {
		p.nextIndex++
		v.index = p.nextIndex
	}
	d.printf("#%d %s\n", v.index, v.name)
	p.current = v
	if v.cacheMiss != "" && !v.missShown {
		v.missShown = true
		d.printf("#%d %s\n", v.index, v.cacheMiss)
	}
}

func (d *Display) printPending(v *vertex) {
	for _, l := range v.pending {
		l.text = stripControl(l.text)
		d.printf("#%d %s\n", v.index, v.format(l))
	}
	v.pending = v.pending[:0]
}

func (d *Display) printFinal(v *vertex) {
	v.final = true
	switch {
	case v.err != nil:
		text, _ := errorText(v.err)
		d.printf("#%d %s\n", v.index, text)
	case v.cached:
		d.printf("#%d CACHED\n", v.index)
	case v.stats != nil:
		d.printf("#%d DONE %s · %s\n", v.index, seconds(v.wall()), usageOf(v.stats))
	default:
		d.printf("#%d DONE %s\n", v.index, seconds(v.wall()))
	}
}

// activateOpen opens the block of the first running vertex, so that a step
// that runs long without output shows that it is running.
func (d *Display) activateOpen() {
	for _, v := range d.order {
		if v.isStarted() && !v.isComplete() {
			d.switchTo(v)
			return
		}
	}
}
