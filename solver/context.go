package solver

import (
	"context"
	"io"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// execInfo is what an op's Exec finds in its context.
type execInfo struct {
	vertex   digest.Digest
	reporter Reporter
	stats    func(Stats)
}

type execKey struct{}

// withExecInfo returns ctx for running the Exec of vertex dgst.
func withExecInfo(ctx context.Context, dgst digest.Digest, r Reporter, stats func(Stats)) context.Context {
	return context.WithValue(ctx, execKey{}, &execInfo{vertex: dgst, reporter: r, stats: stats})
}

func logWriterFrom(ctx context.Context, stream int) io.Writer {
	info, _ := ctx.Value(execKey{}).(*execInfo)
	if info == nil || info.reporter == nil {
		return io.Discard
	}
	return &logWriter{info: info, stream: stream}
}

func reportStatsFrom(ctx context.Context, s Stats) {
	if info, _ := ctx.Value(execKey{}).(*execInfo); info != nil && info.stats != nil {
		info.stats(s)
	}
}

type logWriter struct {
	info   *execInfo
	stream int
}

func (w *logWriter) Write(p []byte) (int, error) {
	b := make([]byte, len(p))
	copy(b, p)
	w.info.reporter.Log(Log{Digest: w.info.vertex, Stream: w.stream, Data: b, Timestamp: time.Now()})
	return len(p), nil
}
