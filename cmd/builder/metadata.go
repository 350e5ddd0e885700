package main

import (
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/builderdev/builder/solver"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
)

// collector is a solver.Reporter that passes everything on to next (the
// progress display) and keeps the last status of every vertex, for
// --metadata-file.
type collector struct {
	next solver.Reporter
	mu   sync.Mutex
	last map[digest.Digest]solver.Status
}

func newCollector(next solver.Reporter) *collector {
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

// stepStats is a step's resource use in --metadata-file.
type stepStats struct {
	CPUUserSeconds   float64 `json:"cpuUserSeconds"`
	CPUSystemSeconds float64 `json:"cpuSystemSeconds"`
	MemoryPeakBytes  uint64  `json:"memoryPeakBytes"`
	IOReadBytes      uint64  `json:"ioReadBytes"`
	IOWriteBytes     uint64  `json:"ioWriteBytes"`
	PidsPeak         uint64  `json:"pidsPeak"`
}

// stepMeta is one step in --metadata-file's builder.steps.
type stepMeta struct {
	Name            string     `json:"name"`
	Digest          string     `json:"digest"`
	Cached          bool       `json:"cached"`
	DurationSeconds float64    `json:"durationSeconds"`
	Error           string     `json:"error,omitempty"`
	Stats           *stepStats `json:"stats,omitempty"`
}

// summaryMeta is builder.summary: totals over the steps (peaks are
// maxima).
type summaryMeta struct {
	Steps           int     `json:"steps"`
	Cached          int     `json:"cached"`
	DurationSeconds float64 `json:"durationSeconds"`
	stepStats
}

// steps returns the finished steps in the order they started.
func (c *collector) steps() ([]stepMeta, summaryMeta) {
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
	var out []stepMeta
	var sum summaryMeta
	var first, last time.Time
	for _, s := range all {
		if s.Completed.IsZero() {
			continue
		}
		m := stepMeta{Name: s.Name, Digest: s.Digest.String(), Cached: s.Cached}
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
			m.Stats = &stepStats{
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

// buildMetadata is the --metadata-file content, with the keys buildx
// writes plus builder.steps and builder.summary.
func buildMetadata(e *exported, c *collector) map[string]any {
	m := map[string]any{}
	if e != nil {
		if e.configDigest != "" { // none for a multi-platform image
			m["containerimage.config.digest"] = e.configDigest
		}
		if e.desc != nil {
			d := *e.desc
			m["containerimage.digest"] = d.Digest.String()
			m["containerimage.descriptor"] = v1.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
		}
		if len(e.names) > 0 {
			m["image.name"] = strings.Join(e.names, ",")
		}
	}
	if c != nil {
		steps, sum := c.steps()
		if steps == nil {
			steps = []stepMeta{}
		}
		m["builder.steps"] = steps
		m["builder.summary"] = sum
	}
	return m
}
