package ops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/llb"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/solver"
	digest "github.com/opencontainers/go-digest"
)

type execOp struct {
	w  *Worker
	v  *llb.Vertex
	op llb.ExecOp
}

// opDigest is an op's own part of its cache key: the vertex digest with
// every input left out, as BuildKit's cache maps digest the op alone. The
// solver adds each input's cache key; an input's vertex digest would tie
// the key to how the input was written (ADD --checksum=C of a commit vs
// the same ADD without it), not to what it is.
func opDigest(v *llb.Vertex) digest.Digest {
	ins := v.Inputs()
	return v.DigestMasking(func(i int) bool { return ins[i] != nil })
}

// CacheMap keys an exec by its op and its inputs' cache keys, except an
// input that only non-root mounts read through a selector (RUN
// --mount=from=stage,source=out): it counts by the content of exactly the
// selected directories, as in BuildKit, so an unrelated change in that
// stage does not re-run the step (see mountSelectors).
func (o *execOp) CacheMap(ctx context.Context) (*solver.CacheMap, error) {
	cm := &solver.CacheMap{Digest: opDigest(o.v)}
	sels := mountSelectors(o.op, len(o.v.Inputs()))
	if len(sels) == 0 {
		return cm, nil
	}
	cm.Deps = make([]solver.CacheDep, len(o.v.Inputs()))
	for i, ss := range sels {
		cm.Deps[i].ContentFunc = func(ctx context.Context, r solver.Result) (digest.Digest, error) {
			d, err := o.w.selectedDigest(ctx, r, ss)
			if err != nil {
				return "", withLocation(o.v, err)
			}
			return d, nil
		}
	}
	return cm, nil
}

// tailLines is how much of a failing step's output its error shows.
const tailLines = 10

func (o *execOp) Exec(ctx context.Context, inputs []solver.Result) (solver.Result, error) {
	if len(o.op.Mounts) == 0 || o.op.Mounts[0].Dest != "/" {
		return nil, fmt.Errorf("%s: exec has no root mount", o.v.Name())
	}
	root := o.op.Mounts[0]
	var base solver.Result
	if root.Input >= 0 {
		base = inputs[root.Input]
	}
	// Results imported lazily from a remote cache are unpacked now.
	if err := o.w.materializeInputs(ctx, inputs); err != nil {
		return nil, fmt.Errorf("%s: %w", o.v.Name(), err)
	}
	parent, err := snapshotName(base)
	if err != nil {
		return nil, err
	}
	st, err := o.w.newStep(ctx, "step-", parent)
	if err != nil {
		return nil, err
	}
	defer st.discard(ctx)
	rootMounts := st.mounts

	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	var extra []executor.Mount
	// Proxy variables are not part of the digest: a declared ARG of the
	// same name (already in Env) wins.
	env := addEnv(o.op.Env, o.op.ProxyEnv)
	var secretEnv []string
	for _, m := range o.op.Mounts[1:] {
		ms, cleanup, err := o.mount(ctx, m, inputs)
		if cleanup != nil {
			cleanups = append(cleanups, cleanup)
		}
		if err != nil {
			return nil, withLocation(o.v, err)
		}
		extra = append(extra, ms.mounts...)
		env = addEnv(env, ms.env)
		secretEnv = append(secretEnv, ms.secretEnv...)
	}
	env = replaceEnv(env, secretEnv)

	tail := &tailBuffer{max: tailLines}
	// One writer for stdout and stderr: exec.Cmd then gives the process
	// one pipe for both, so the log keeps the order the process wrote
	// (two pipes drained by two goroutines reorder them), as a terminal
	// would show it. The log records it all as stream 1.
	output := io.MultiWriter(solver.LogWriter(ctx, 1), tail)
	spec := executor.Spec{
		Rootfs:       toExecMounts(rootMounts, "/"),
		Mounts:       extra,
		Args:         o.op.Args,
		Env:          env,
		Cwd:          o.op.Cwd,
		User:         o.op.User,
		Hostname:     o.op.Hostname,
		Network:      executor.NetworkHost,
		Stdout:       output,
		Stderr:       output,
		Limits:       o.w.opt.Limits,
		CgroupParent: o.w.opt.CgroupParent,
		Security:     executor.Security(o.op.Security),
	}
	if spec.Hostname == "" {
		spec.Hostname = o.w.opt.Hostname
	}
	spec.ShmSize = o.op.ShmSize
	for _, h := range o.op.ExtraHosts {
		spec.ExtraHosts = append(spec.ExtraHosts, executor.HostIP{Host: h.Host, IP: h.IP})
	}
	for _, u := range o.op.Ulimits {
		spec.Ulimits = append(spec.Ulimits, executor.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	if o.op.Network == llb.NetNone {
		spec.Network = executor.NetworkNone
	}
	stats, err := o.w.opt.Runner.Run(ctx, spec)
	solver.ReportStats(ctx, solver.Stats(stats))
	if err != nil {
		var ee *executor.ExitError
		loc := o.v.Meta().Location
		if errors.As(err, &ee) && ee.OOMKilled && loc.Line > 0 {
			// "RUN at Dockerfile:7 was killed: out of memory (limit 64MiB)"
			return nil, &StepError{Location: loc, Err: fmt.Errorf("RUN at %s:%d was %w", loc.File, loc.Line, ee), Tail: tail.lines(), located: true}
		}
		if errors.As(err, &ee) {
			err = fmt.Errorf("process %q did not complete successfully: %w", strings.Join(o.op.Args, " "), err)
		}
		return nil, &StepError{Location: loc, Err: err, Tail: tail.lines()}
	}
	return st.commit(ctx, &record{Parent: recordID(base)})
}

func toExecMounts(ms []snapshot.Mount, target string) []executor.Mount {
	out := make([]executor.Mount, len(ms))
	for i, m := range ms {
		out[i] = executor.Mount{Type: m.Type, Source: m.Source, Target: target, Options: m.Options}
	}
	return out
}

// tailBuffer keeps the last max lines written to it.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	partial []byte
	done    []string
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		t.done = append(t.done, string(t.partial[:i]))
		t.partial = t.partial[i+1:]
		if len(t.done) > t.max {
			t.done = t.done[len(t.done)-t.max:]
		}
	}
	if len(t.partial) > 4096 {
		t.partial = t.partial[len(t.partial)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.done...)
	if len(t.partial) > 0 {
		out = append(out, string(t.partial))
	}
	if len(out) > t.max {
		out = out[len(out)-t.max:]
	}
	return out
}
