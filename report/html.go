package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"sync"
	"time"
)

//go:embed report.html.tmpl
var pageTemplate string

// page is parsed when a report is first written, not when the binary
// starts: the binary is also every RUN's sandbox init.
var page = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("report").Funcs(template.FuncMap{
		"bytes": humanBytes,
		"secs":  humanSeconds,
		"short": shortDigest,
		"pct":   func(f float64) string { return fmt.Sprintf("%.3f%%", f) },
	}).Parse(pageTemplate))
})

// row is one step as the page shows it.
type row struct {
	Step
	N        int
	Start    float64 // seconds since the build started
	End      float64
	Left     float64 // percent of the timeline
	Width    float64
	Critical bool
	State    string // "cached", "ran", "failed"
}

// layerRow is one layer with its share of the image size.
type layerRow struct {
	Layer
	N     int
	Width float64
}

type pageData struct {
	Title    string
	Build    *Build
	Rows     []row
	Critical []row
	Layers   []layerRow
	Total    float64
	Ran      int
	Failed   int
	ImageSz  int64
	Ticks    []tick
}

type tick struct {
	Left  float64
	Label string
}

// WriteHTML writes the page of b to w, titled with the image's names.
func WriteHTML(w io.Writer, b *Build) error {
	d := pageData{Build: b}
	if b.Image != nil {
		d.Title = strings.Join(b.Image.Names, ", ")
	}
	steps := append([]Step(nil), b.Steps...)
	SortSteps(steps)
	var t0, t1 time.Time
	for _, s := range steps {
		if !s.Started.IsZero() && (t0.IsZero() || s.Started.Before(t0)) {
			t0 = s.Started
		}
		if s.Completed.After(t1) {
			t1 = s.Completed
		}
	}
	d.Total = t1.Sub(t0).Seconds()
	crit := map[string]bool{}
	for _, dg := range CriticalPath(steps) {
		crit[dg] = true
	}
	for i, s := range steps {
		r := row{Step: s, N: i + 1, Critical: crit[s.Digest], State: "ran"}
		switch {
		case s.Error != "":
			r.State = "failed"
			d.Failed++
		case s.Cached:
			r.State = "cached"
		default:
			d.Ran++
		}
		if !s.Started.IsZero() && d.Total > 0 {
			r.Start = s.Started.Sub(t0).Seconds()
			r.End = s.Completed.Sub(t0).Seconds()
			r.DurationSeconds = r.End - r.Start
			r.Left = 100 * r.Start / d.Total
			r.Width = max(100*(r.End-r.Start)/d.Total, 0.4)
			r.Left = min(r.Left, 100-r.Width)
		}
		d.Rows = append(d.Rows, r)
		if r.Critical {
			d.Critical = append(d.Critical, r)
		}
	}
	d.Ticks = ticks(d.Total)
	if b.Image != nil {
		for _, l := range b.Image.Layers {
			d.ImageSz += l.Size
		}
		for i, l := range b.Image.Layers {
			lr := layerRow{Layer: l, N: i + 1}
			if d.ImageSz > 0 {
				lr.Width = max(100*float64(l.Size)/float64(d.ImageSz), 0.4)
			}
			d.Layers = append(d.Layers, lr)
		}
	}
	return page().Execute(w, d)
}

// ticks are about five round time marks along the timeline.
func ticks(total float64) []tick {
	if total <= 0 {
		return nil
	}
	step := 0.001
	for _, s := range []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600} {
		step = s
		if total/s <= 6 {
			break
		}
	}
	var out []tick
	for t := 0.0; t <= total+1e-9; t += step {
		out = append(out, tick{Left: 100 * t / total, Label: humanSeconds(t)})
	}
	return out
}

func humanBytes(n any) string {
	var v float64
	switch x := n.(type) {
	case int64:
		v = float64(x)
	case uint64:
		v = float64(x)
	case int:
		v = float64(x)
	}
	for _, u := range []string{"B", "KiB", "MiB", "GiB"} {
		if v < 1024 || u == "GiB" {
			if u == "B" {
				return fmt.Sprintf("%.0f B", v)
			}
			return fmt.Sprintf("%.1f %s", v, u)
		}
		v /= 1024
	}
	return ""
}

func humanSeconds(s float64) string {
	switch {
	case s == 0:
		return "0s"
	case s < 1:
		return fmt.Sprintf("%.0fms", s*1000)
	case s < 60:
		return fmt.Sprintf("%.1fs", s)
	}
	return fmt.Sprintf("%dm%02.0fs", int(s)/60, s-float64(int(s)/60*60))
}

func shortDigest(d string) string {
	_, hex, ok := strings.Cut(d, ":")
	if !ok {
		hex = d
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}
