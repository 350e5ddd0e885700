package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// Stats is the resource use of one step, from its cgroup.
type Stats struct {
	CPUUserSeconds   float64 `json:"cpuUserSeconds"`
	CPUSystemSeconds float64 `json:"cpuSystemSeconds"`
	MemoryPeakBytes  uint64  `json:"memoryPeakBytes"`
	IOReadBytes      uint64  `json:"ioReadBytes"`
	IOWriteBytes     uint64  `json:"ioWriteBytes"`
	PidsPeak         uint64  `json:"pidsPeak"`
}

// Step is one step of a build (a vertex of the solved graph, or an
// export step).
type Step struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	// Inputs are the digests of the steps this one used.
	Inputs          []string  `json:"inputs,omitempty"`
	Cached          bool      `json:"cached"`
	Started         time.Time `json:"started,omitzero"`
	Completed       time.Time `json:"completed,omitzero"`
	DurationSeconds float64   `json:"durationSeconds"`
	// CacheMiss says why a step that ran missed the cache.
	CacheMiss string `json:"cacheMiss,omitempty"`
	Error     string `json:"error,omitempty"`
	Stats     *Stats `json:"stats,omitempty"`
}

// Summary is the totals over the steps (peaks are maxima).
type Summary struct {
	Steps           int     `json:"steps"`
	Cached          int     `json:"cached"`
	DurationSeconds float64 `json:"durationSeconds"`
	Stats
}

// Layer is one layer of the final image.
type Layer struct {
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	// CreatedBy is the history entry that made the layer.
	CreatedBy string `json:"createdBy,omitempty"`
}

// Image is the final image of a build.
type Image struct {
	Names        []string `json:"names,omitempty"`
	ConfigDigest string   `json:"configDigest,omitempty"`
	Digest       string   `json:"digest,omitempty"`
	Layers       []Layer  `json:"layers"`
}

// Traffic is what a build moved over the network.
type Traffic struct {
	PulledBytes int64 `json:"pulledBytes"`
	PushedBytes int64 `json:"pushedBytes"`
}

// Build is the record of one build the page shows.
type Build struct {
	Steps   []Step
	Summary Summary
	Image   *Image
	Traffic Traffic
}

// Metadata keys under which `builder build --metadata-file` writes the
// record, next to buildx's own keys.
const (
	KeySteps   = "builder.steps"
	KeySummary = "builder.summary"
	KeyImage   = "builder.image"
	KeyTraffic = "builder.traffic"
)

// maxMetadata bounds a metadata file read by ReadMetadata.
const maxMetadata = 64 << 20

// ReadMetadata reads the record of a build from a --metadata-file.
func ReadMetadata(r io.Reader) (*Build, error) {
	var m map[string]json.RawMessage
	data, err := io.ReadAll(io.LimitReader(r, maxMetadata+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxMetadata {
		return nil, fmt.Errorf("metadata larger than %d bytes", maxMetadata)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not a build metadata file: %w", err)
	}
	raw, ok := m[KeySteps]
	if !ok {
		return nil, fmt.Errorf("no %q in it: write it with builder build --metadata-file", KeySteps)
	}
	b := &Build{}
	for key, v := range map[string]any{KeySteps: &b.Steps, KeySummary: &b.Summary, KeyImage: &b.Image, KeyTraffic: &b.Traffic} {
		if raw, ok = m[key]; !ok {
			continue
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	return b, nil
}

// Summarize computes the totals of steps, ordered as they started.
func Summarize(steps []Step) Summary {
	var sum Summary
	var first, last time.Time
	for _, s := range steps {
		if !s.Started.IsZero() && (first.IsZero() || s.Started.Before(first)) {
			first = s.Started
		}
		if s.Completed.After(last) {
			last = s.Completed
		}
		if st := s.Stats; st != nil {
			sum.CPUUserSeconds += st.CPUUserSeconds
			sum.CPUSystemSeconds += st.CPUSystemSeconds
			sum.MemoryPeakBytes = max(sum.MemoryPeakBytes, st.MemoryPeakBytes)
			sum.IOReadBytes += st.IOReadBytes
			sum.IOWriteBytes += st.IOWriteBytes
			sum.PidsPeak = max(sum.PidsPeak, st.PidsPeak)
		}
		sum.Steps++
		if s.Cached {
			sum.Cached++
		}
	}
	if !first.IsZero() {
		sum.DurationSeconds = last.Sub(first).Seconds()
	}
	return sum
}

// SortSteps orders steps as they started (then by name).
func SortSteps(steps []Step) {
	sort.SliceStable(steps, func(i, j int) bool {
		if !steps[i].Started.Equal(steps[j].Started) {
			return steps[i].Started.Before(steps[j].Started)
		}
		return steps[i].Name < steps[j].Name
	})
}

// CriticalPath returns the digests of the chain of steps that decided
// the build's length, first to last: from the step that completed last,
// back through the step each one waited for (see waitedFor). Steps
// without times are left out.
func CriticalPath(steps []Step) []string {
	byDigest := make(map[string]*Step, len(steps))
	var end *Step
	for i := range steps {
		s := &steps[i]
		if s.Completed.IsZero() {
			continue
		}
		byDigest[s.Digest] = s
		if end == nil || s.Completed.After(end.Completed) {
			end = s
		}
	}
	var path []string
	seen := map[string]bool{}
	for s := end; s != nil && !seen[s.Digest]; {
		seen[s.Digest] = true
		path = append(path, s.Digest)
		s = waitedFor(s, byDigest, seen)
	}
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return path
}

// slack is how long after a step completed another may start and still
// count as having waited for it.
const slack = 50 * time.Millisecond

// waitedFor is the step s waited for: the input that completed last, or,
// for a step without inputs in the record (the Dockerfile's loading, the
// exports), the step that completed last before it started.
func waitedFor(s *Step, byDigest map[string]*Step, seen map[string]bool) *Step {
	var next *Step
	for _, in := range s.Inputs {
		if p := byDigest[in]; p != nil && !seen[p.Digest] && (next == nil || p.Completed.After(next.Completed)) {
			next = p
		}
	}
	if next != nil || s.Started.IsZero() {
		return next
	}
	for _, p := range byDigest {
		if seen[p.Digest] || p.Completed.After(s.Started.Add(slack)) {
			continue
		}
		if next == nil || p.Completed.After(next.Completed) || (p.Completed.Equal(next.Completed) && p.Digest < next.Digest) {
			next = p
		}
	}
	return next
}

// ReadMetadataFile reads the build record of the --metadata-file at path
// (see ReadMetadata).
func ReadMetadataFile(path string) (*Build, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading build metadata: %w", err)
	}
	defer f.Close()
	b, err := ReadMetadata(f)
	if err != nil {
		return nil, fmt.Errorf("build metadata %s: %w", path, err)
	}
	return b, nil
}
