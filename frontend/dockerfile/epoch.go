package dockerfile

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/builderdev/builder/llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// epochOfName is the time of SOURCE_DATE_EPOCH=name, as BuildKit v0.34
// resolves it (dockerfile2llb/epoch.go): a named context first (an HTTP
// URL has a time; a directory or an image has none), else a stage of
// that name, which must be source-only: FROM scratch, ARGs and exactly one
// ADD of an HTTP(S) URL, whose time is the epoch. Any other name is an
// invalid SOURCE_DATE_EPOCH.
func (c *converter) epochOfName(ctx context.Context, name string, stages []instructions.Stage) (*time.Time, error) {
	if nc, ok := c.namedContext(name); ok {
		if nc.HTTP == "" {
			return nil, nil
		}
		return c.httpEpoch(ctx, llb.HTTPOp{URL: nc.HTTP, Filename: "context"})
	}
	for i := range stages {
		if !strings.EqualFold(stages[i].Name, name) {
			continue
		}
		op, err := c.epochStageSource(stages[i])
		if err != nil {
			return nil, c.errAt(stages[i].Location, err)
		}
		tm, err := c.httpEpoch(ctx, op)
		if err != nil {
			return nil, c.errAt(stages[i].Location, err)
		}
		return tm, nil
	}
	return nil, fmt.Errorf("invalid SOURCE_DATE_EPOCH: %s (want seconds since 1970-01-01 UTC, \"context\", a named context or a source-only stage)", name)
}

// httpEpoch asks Options.SourceEpoch for the time of op.
func (c *converter) httpEpoch(ctx context.Context, op llb.HTTPOp) (*time.Time, error) {
	if c.opt.SourceEpoch == nil {
		return nil, fmt.Errorf("SOURCE_DATE_EPOCH from %s: this build cannot fetch sources", op.URL)
	}
	return c.opt.SourceEpoch(ctx, op)
}

// epochStageSource checks that stage is source-only and returns its ADD's
// HTTP source, its ARGs and the global args (without SOURCE_DATE_EPOCH)
// expanded in it, as BuildKit's sourceDateEpochStageSource.
func (c *converter) epochStageSource(stage instructions.Stage) (llb.HTTPOp, error) {
	env := c.global.unset("SOURCE_DATE_EPOCH")
	base, _, err := c.shlex.ProcessWord(stage.BaseName, env)
	if err != nil {
		return llb.HTTPOp{}, fmt.Errorf("failed to process source stage base name %q: %w", stage.BaseName, err)
	}
	if base != emptyImageName {
		return llb.HTTPOp{}, errors.New("SOURCE_DATE_EPOCH stage must use FROM scratch")
	}
	var src *llb.HTTPOp
	for _, cmd := range stage.Commands {
		switch cmd := cmd.(type) {
		case *instructions.ArgCommand:
			for _, a := range cmd.Args {
				if v, ok := c.opt.BuildArgs[a.Key]; ok {
					env = env.set(a.Key, v)
					continue
				}
				if a.Value == nil {
					continue
				}
				v, _, err := c.shlex.ProcessWord(*a.Value, env)
				if err != nil {
					return llb.HTTPOp{}, err
				}
				env = env.set(a.Key, v)
			}
		case *instructions.AddCommand:
			if src != nil {
				return llb.HTTPOp{}, errors.New("SOURCE_DATE_EPOCH stage must contain exactly one remote ADD")
			}
			op, err := c.epochAddSource(cmd, env)
			if err != nil {
				return llb.HTTPOp{}, err
			}
			src = &op
		default:
			return llb.HTTPOp{}, fmt.Errorf("SOURCE_DATE_EPOCH stage does not meet source-only requirements: unsupported %s instruction", cmd.Name())
		}
	}
	if src == nil {
		return llb.HTTPOp{}, errors.New("SOURCE_DATE_EPOCH stage must contain exactly one remote ADD")
	}
	return *src, nil
}

// epochAddSource is the HTTP source of a source-only stage's ADD. BuildKit
// also takes a git URL (the commit's time); builder does not yet.
func (c *converter) epochAddSource(cmd *instructions.AddCommand, env envList) (llb.HTTPOp, error) {
	if len(cmd.SourceContents) != 0 || len(cmd.SourcePaths) != 1 {
		return llb.HTTPOp{}, errors.New("SOURCE_DATE_EPOCH stage must contain exactly one remote ADD source")
	}
	src, _, err := c.shlex.ProcessWord(cmd.SourcePaths[0], env)
	if err != nil {
		return llb.HTTPOp{}, err
	}
	if !isURL(src) {
		return llb.HTTPOp{}, errors.New("SOURCE_DATE_EPOCH stage source must be a single HTTP(S) ADD (a git source is not supported by builder)")
	}
	op := llb.HTTPOp{URL: src, Filename: epochHTTPFilename(src)}
	if cmd.Checksum != "" {
		sum, _, err := c.shlex.ProcessWord(cmd.Checksum, env)
		if err != nil {
			return llb.HTTPOp{}, err
		}
		op.Checksum = sum
	}
	return op, nil
}

// epochHTTPFilename is the file name BuildKit gives an HTTP source: the
// URL path's last element.
func epochHTTPFilename(src string) string {
	if u, err := url.Parse(src); err == nil {
		if base := path.Base(u.Path); base != "." && base != "/" {
			return base
		}
	}
	return "__unnamed__"
}
