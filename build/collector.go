package build

import (
	"sync"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/report"
	"github.com/builderdev/builder/solver"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
)

// collector is the Reporter a build reports to: it passes everything on
// to the caller's reporter and keeps the last status of every vertex, for
// Result.Record.
type collector struct {
	next Reporter
	mu   sync.Mutex
	last map[digest.Digest]solver.Status
	// traffic reports the bytes the build's registry client moved.
	traffic func() (received, sent int64)
	// image is the build's image, once exported.
	image *report.Image
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
	if ok && s.CacheMiss == "" {
		s.CacheMiss = prev.CacheMiss
	}
	c.last[s.Digest] = s
	c.mu.Unlock()
	c.next.Status(s)
}

// Log implements solver.Reporter.
func (c *collector) Log(l solver.Log) { c.next.Log(l) }

// Warn implements Reporter.
func (c *collector) Warn(line int, msg string) { c.next.Warn(line, msg) }

// steps returns the finished steps in the order they started.
func (c *collector) steps() []report.Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]report.Step, 0, len(c.last))
	for _, s := range c.last {
		if s.Completed.IsZero() {
			continue
		}
		// The report keeps wall-clock times only: what it computes from
		// them must come out the same when the page is made again from
		// the metadata file, which has no monotonic readings.
		started, completed := s.Started.Round(0), s.Completed.Round(0)
		m := report.Step{Name: s.Name, Digest: s.Digest.String(), Cached: s.Cached, Started: started, Completed: completed, CacheMiss: s.CacheMiss}
		for _, in := range s.Inputs {
			m.Inputs = append(m.Inputs, in.String())
		}
		if !s.Started.IsZero() {
			m.DurationSeconds = completed.Sub(started).Seconds()
		}
		if s.Err != nil {
			m.Error = s.Err.Error()
		}
		if st := s.Stats; st != nil {
			m.Stats = &report.Stats{
				CPUUserSeconds:   st.CPUUser.Seconds(),
				CPUSystemSeconds: st.CPUSystem.Seconds(),
				MemoryPeakBytes:  st.MemoryPeak,
				IOReadBytes:      st.IORead,
				IOWriteBytes:     st.IOWrite,
				PidsPeak:         st.PidsPeak,
			}
		}
		out = append(out, m)
	}
	report.SortSteps(out)
	return out
}

// record is the build's record: its steps, totals, image and traffic.
func (c *collector) record() *report.Build {
	b := &report.Build{Steps: c.steps()}
	b.Summary = report.Summarize(b.Steps)
	if c.traffic != nil {
		recv, sent := c.traffic()
		b.Traffic = report.Traffic{PulledBytes: recv, PushedBytes: sent}
	}
	c.mu.Lock()
	b.Image = c.image
	c.mu.Unlock()
	return b
}

// setImage records the exported image for the record.
func (c *collector) setImage(res *Result, layers []report.Layer) {
	im := &report.Image{Names: res.Names, ConfigDigest: res.ImageID.String(), Digest: res.Descriptor.Digest.String(), Layers: layers}
	if im.Layers == nil {
		im.Layers = []report.Layer{}
	}
	c.mu.Lock()
	c.image = im
	c.mu.Unlock()
}

// imageLayers lists an image's layers for the record, each with the
// history entry that made it.
func imageLayers(layers []cache.Layer, history []v1.History) []report.Layer {
	var made []string
	for _, h := range history {
		if !h.EmptyLayer {
			made = append(made, h.CreatedBy)
		}
	}
	out := make([]report.Layer, 0, len(layers))
	for i, l := range layers {
		rl := report.Layer{Digest: l.Digest.String(), MediaType: l.MediaType, Size: l.Size}
		if len(made) == len(layers) {
			rl.CreatedBy = made[i]
		}
		out = append(out, rl)
	}
	return out
}
