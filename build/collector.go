package build

import (
	"sort"
	"sync"
	"time"

	"github.com/builderdev/builder/solver"
	digest "github.com/opencontainers/go-digest"
)

// collector is the Reporter a build reports to: it passes everything on
// to the caller's reporter and keeps the last status of every vertex, for
// Result.Steps.
type collector struct {
	next Reporter
	mu   sync.Mutex
	last map[digest.Digest]solver.Status
}

func newCollector(next Reporter) *collector {
	return &collector{next: next, last: map[digest.Digest]solver.Status{}}
}

// Status implements solver.Reporter.
func (c *collector) Status(s solver.Status) {
	c.mu.Lock()
	prev, ok := c.last[s.Digest]
	if ok && s.Stats == nil {
		s.Stats = prev.Stats
	}
	c.last[s.Digest] = s
	c.mu.Unlock()
	c.next.Status(s)
}

// Log implements solver.Reporter.
func (c *collector) Log(l solver.Log) { c.next.Log(l) }

// Warn implements Reporter.
func (c *collector) Warn(line int, msg string) { c.next.Warn(line, msg) }

// steps returns the finished steps in the order they started, and their
// totals.
func (c *collector) steps() ([]Step, Summary) {
	c.mu.Lock()
	all := make([]solver.Status, 0, len(c.last))
	for _, s := range c.last {
		all = append(all, s)
	}
	c.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		if !all[i].Started.Equal(all[j].Started) {
			return all[i].Started.Before(all[j].Started)
		}
		return all[i].Name < all[j].Name
	})
	out := []Step{}
	var sum Summary
	var first, last time.Time
	for _, s := range all {
		if s.Completed.IsZero() {
			continue
		}
		m := Step{Name: s.Name, Digest: s.Digest.String(), Cached: s.Cached}
		if !s.Started.IsZero() {
			m.DurationSeconds = s.Completed.Sub(s.Started).Seconds()
			if first.IsZero() || s.Started.Before(first) {
				first = s.Started
			}
		}
		if s.Completed.After(last) {
			last = s.Completed
		}
		if s.Err != nil {
			m.Error = s.Err.Error()
		}
		if st := s.Stats; st != nil {
			m.Stats = &StepStats{
				CPUUserSeconds:   st.CPUUser.Seconds(),
				CPUSystemSeconds: st.CPUSystem.Seconds(),
				MemoryPeakBytes:  st.MemoryPeak,
				IOReadBytes:      st.IORead,
				IOWriteBytes:     st.IOWrite,
				PidsPeak:         st.PidsPeak,
			}
			sum.CPUUserSeconds += m.Stats.CPUUserSeconds
			sum.CPUSystemSeconds += m.Stats.CPUSystemSeconds
			sum.MemoryPeakBytes = max(sum.MemoryPeakBytes, st.MemoryPeak)
			sum.IOReadBytes += st.IORead
			sum.IOWriteBytes += st.IOWrite
			sum.PidsPeak = max(sum.PidsPeak, st.PidsPeak)
		}
		sum.Steps++
		if s.Cached {
			sum.Cached++
		}
		out = append(out, m)
	}
	if !first.IsZero() {
		sum.DurationSeconds = last.Sub(first).Seconds()
	}
	return out, sum
}
