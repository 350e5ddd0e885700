package progressui

import (
	"encoding/json"
	"io"
	"time"

	"github.com/builderdev/builder/solver"
	digest "github.com/opencontainers/go-digest"
)

// rawJSON is --progress=rawjson: one JSON object per line for every
// status, log chunk and warning, shaped as BuildKit's client.SolveStatus
// (buildctl --progress=rawjson), so tools written for it read ours. A
// vertex also carries what BuildKit's has not: "cacheMiss" (why it ran)
// and "stats" (its cgroup accounting).
type rawJSON struct {
	enc *json.Encoder
	err error
}

func newRawJSON(w io.Writer) *rawJSON {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &rawJSON{enc: enc}
}

// solveStatus is BuildKit's client.SolveStatus.
type solveStatus struct {
	Vertexes []rawVertex  `json:"vertexes,omitempty"`
	Logs     []rawLog     `json:"logs,omitempty"`
	Warnings []rawWarning `json:"warnings,omitempty"`
}

// rawVertex is BuildKit's client.Vertex plus cacheMiss and stats.
type rawVertex struct {
	Digest    digest.Digest   `json:"digest,omitempty"`
	Inputs    []digest.Digest `json:"inputs,omitempty"`
	Name      string          `json:"name,omitempty"`
	Started   *time.Time      `json:"started,omitempty"`
	Completed *time.Time      `json:"completed,omitempty"`
	Cached    bool            `json:"cached,omitempty"`
	Error     string          `json:"error,omitempty"`
	CacheMiss string          `json:"cacheMiss,omitempty"`
	Stats     *rawStats       `json:"stats,omitempty"`
	// ProgressGroup is BuildKit's pb.ProgressGroup: the vertices of a
	// group are shown as one step (COPY --link's copy and merge).
	ProgressGroup *rawProgressGroup `json:"progressGroup,omitempty"`
}

type rawProgressGroup struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
	Weak bool   `json:"weak,omitempty"`
}

// rawStats is a step's resource use (durations in nanoseconds).
type rawStats struct {
	CPUUser    time.Duration `json:"cpuUser"`
	CPUSystem  time.Duration `json:"cpuSystem"`
	MemoryPeak uint64        `json:"memoryPeak"`
	IORead     uint64        `json:"ioRead"`
	IOWrite    uint64        `json:"ioWrite"`
	PidsPeak   uint64        `json:"pidsPeak"`
}

// rawLog is BuildKit's client.VertexLog (data is base64, as []byte is).
type rawLog struct {
	Vertex    digest.Digest `json:"vertex,omitempty"`
	Stream    int           `json:"stream,omitempty"`
	Data      []byte        `json:"data"`
	Timestamp time.Time     `json:"timestamp"`
}

// rawWarning is BuildKit's client.VertexWarning, with the Dockerfile line
// in range as BuildKit's pb.Range.
type rawWarning struct {
	Level int        `json:"level,omitempty"`
	Short []byte     `json:"short,omitempty"`
	Range []rawRange `json:"range,omitempty"`
}

type rawRange struct {
	Start rawPosition `json:"start"`
	End   rawPosition `json:"end"`
}

type rawPosition struct {
	Line int `json:"line"`
}

func (r *rawJSON) write(s solveStatus) {
	if r.err == nil {
		r.err = r.enc.Encode(s)
	}
}

func (r *rawJSON) status(s solver.Status) {
	v := rawVertex{Digest: s.Digest, Inputs: s.Inputs, Name: s.Name, Cached: s.Cached, CacheMiss: s.CacheMiss}
	if !s.Started.IsZero() {
		t := s.Started
		v.Started = &t
	}
	if !s.Completed.IsZero() {
		t := s.Completed
		v.Completed = &t
	}
	if s.Err != nil {
		v.Error = s.Err.Error()
	}
	if pg := s.ProgressGroup; pg != nil {
		v.ProgressGroup = &rawProgressGroup{ID: pg.ID, Name: pg.Name, Weak: pg.Weak}
	}
	if st := s.Stats; st != nil {
		v.Stats = &rawStats{CPUUser: st.CPUUser, CPUSystem: st.CPUSystem, MemoryPeak: st.MemoryPeak, IORead: st.IORead, IOWrite: st.IOWrite, PidsPeak: st.PidsPeak}
	}
	r.write(solveStatus{Vertexes: []rawVertex{v}})
}

func (r *rawJSON) log(l solver.Log) {
	r.write(solveStatus{Logs: []rawLog{{Vertex: l.Digest, Stream: l.Stream, Data: l.Data, Timestamp: l.Timestamp}}})
}

func (r *rawJSON) warn(line int, msg string) {
	w := rawWarning{Level: 1, Short: []byte(msg)}
	if line > 0 {
		w.Range = []rawRange{{Start: rawPosition{Line: line}, End: rawPosition{Line: line}}}
	}
	r.write(solveStatus{Warnings: []rawWarning{w}})
}
