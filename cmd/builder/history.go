package main

import (
	"fmt"
	"io"
	"time"

	imagestore "github.com/builderdev/builder/exporter/imagestore"
	"github.com/builderdev/builder/llb"
	"github.com/spf13/cobra"
)

// newHistoryCommand is `builder history IMAGE`, as docker image history:
// the image's history entries, newest first, with the size each layer
// adds (unpacked).
func newHistoryCommand() *cobra.Command {
	var root, format, platform string
	var noTrunc, quiet, human bool
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lf, err := parseListFormat(format, historyTable)
			if err != nil {
				return err
			}
			var p llb.Platform
			if platform != "" {
				if p, err = llb.ParsePlatform(platform); err != nil {
					return fmt.Errorf("--platform: %w", err)
				}
			}
			return withImageStore(root, func(s *imagestore.Store) error {
				rows, err := imageHistory(s, args[0], p, time.Now(), noTrunc, human)
				if err != nil {
					return err
				}
				return printHistory(cmd.OutOrStdout(), rows, quiet, lf)
			})
		},
	}
	rootFlag(cmd, &root)
	cmd.Flags().StringVar(&platform, "platform", "", "Show the history of the image for this platform of a multi-platform image (default: the host's)")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	cmd.Flags().BoolVarP(&human, "human", "H", true, "Print sizes and dates in human readable format")
	cmd.Flags().StringVar(&format, "format", "", `Format output using a custom template: "table", "table TEMPLATE", "json" or a Go template (fields: .ID .CreatedSince .CreatedAt .CreatedBy .Size .Comment)`)
	return cmd
}

const historyTable = "{{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}"

var historyHeaders = map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
	"CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}

// historyRow is one line of builder history, with docker's field names.
type historyRow struct {
	ID, CreatedSince, CreatedAt, CreatedBy, Size, Comment string
}

// createdByWidth is where docker history cuts CREATED BY.
const createdByWidth = 45

// imageHistory formats the history of ref, newest first. The newest
// entry carries the image ID, the others "<missing>" (they are not images
// of their own here, as with docker's BuildKit-built images).
func imageHistory(s *imagestore.Store, ref string, p llb.Platform, now time.Time, noTrunc, human bool) ([]historyRow, error) {
	id, hist, err := s.History(ref, p)
	if err != nil {
		return nil, err
	}
	out := make([]historyRow, 0, len(hist))
	for _, h := range hist {
		r := historyRow{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment}
		if human {
			r.CreatedSince, r.Size = humanAgo(now, h.Created), humanSize(h.Size)
		} else {
			r.CreatedSince, r.Size = h.Created.Format(time.RFC3339), fmt.Sprint(h.Size)
		}
		if !h.Created.IsZero() {
			r.CreatedAt = h.Created.Format(time.RFC3339)
		}
		if !noTrunc && len([]rune(r.CreatedBy)) > createdByWidth {
			r.CreatedBy = string([]rune(r.CreatedBy)[:createdByWidth-1]) + "…"
		}
		out = append(out, r)
	}
	if len(out) > 0 {
		out[0].ID = id.Encoded()[:12]
		if noTrunc {
			out[0].ID = id.String()
		}
	}
	return out, nil
}

func printHistory(w io.Writer, rows []historyRow, quiet bool, lf *listFormat) error {
	if quiet {
		for _, r := range rows {
			fmt.Fprintln(w, r.ID)
		}
		return nil
	}
	items := make([]any, len(rows))
	for i, r := range rows {
		items[i] = r
	}
	return lf.write(w, items, historyHeaders)
}
