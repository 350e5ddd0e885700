package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/template"
	"time"

	"github.com/builderdev/builder/exporter"
	imagestore "github.com/builderdev/builder/exporter/imagestore"
	"github.com/builderdev/builder/internal/fsutil"
	"github.com/builderdev/builder/internal/pty"
	"github.com/builderdev/builder/state"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// withImageStore opens the image store under dir for fn.
func withImageStore(dir string, fn func(s *imagestore.Store) error) error {
	return withRootImages(dir, func(_ *state.Root, s *imagestore.Store) error { return fn(s) })
}

// withRootImages opens the root dir and its image store for fn.
func withRootImages(dir string, fn func(root *state.Root, s *imagestore.Store) error) error {
	root, err := state.Open(dir, state.Options{})
	if err != nil {
		return err
	}
	defer root.Close()
	s, err := root.Images()
	if err != nil {
		return err
	}
	lazyBlobs(root, s.Blobs(), nil)
	return fn(root, s)
}

// rootFlag adds --root, the state directory of every command.
func rootFlag(cmd *cobra.Command, root *string) {
	cmd.Flags().StringVar(root, "root", state.DefaultDir(), "Directory for the builder's state (cache, blobs, snapshots); env BUILDER_ROOT")
}

func newImagesCommand() *cobra.Command {
	var root, format string
	var quiet, noTrunc, all bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images in the local image store",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := imagestore.ParseFilters(filters)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				f.Arg = args[0]
			}
			lf, err := parseListFormat(format, imagesTable)
			if err != nil {
				return err
			}
			return withImageStore(root, func(s *imagestore.Store) error {
				all, err := s.List()
				if err != nil {
					return err
				}
				return printImages(cmd.OutOrStdout(), s, all, f, quiet, noTrunc, lf, time.Now())
			})
		},
	}
	rootFlag(cmd, &root)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	// The store keeps no intermediate images (a build's steps live in the
	// cache, not as images): -a lists what the default lists.
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Show all images (the store has no intermediate images to hide)")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, `Filter output based on conditions provided ("dangling=true|false", "reference=PATTERN")`)
	cmd.Flags().StringVar(&format, "format", "", `Format output using a custom template: "table", "table TEMPLATE", "json" or a Go template (fields: .Repository .Tag .ID .Digest .CreatedSince .CreatedAt .Size .CompressedSize)`)
	return cmd
}

const imagesTable = "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"

// imageHeaders are the column titles of builder images' fields.
var imageHeaders = map[string]string{"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
	"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "CompressedSize": "COMPRESSED SIZE"}

// imageSummary is one line of builder images, as docker names its
// --format fields; Size is unpacked as in docker, CompressedSize as stored.
type imageSummary struct {
	Repository, Tag, ID, Digest, CreatedSince, CreatedAt, Size, CompressedSize string
}

func printImages(w io.Writer, s *imagestore.Store, all []imagestore.Image, f imagestore.Filters, quiet, noTrunc bool, lf *listFormat, now time.Time) error {
	id := func(im imagestore.Image) string {
		if noTrunc {
			return im.ID.String()
		}
		return im.ID.Encoded()[:12]
	}
	rs := f.Apply(all)
	if quiet {
		seen := map[string]bool{}
		for _, r := range rs {
			if !seen[id(r.Image)] {
				seen[id(r.Image)] = true
				fmt.Fprintln(w, id(r.Image))
			}
		}
		return nil
	}
	items := make([]any, 0, len(rs))
	sizes := map[string]string{}
	var damaged []string
	for _, r := range rs {
		size, ok := sizes[r.Image.ID.String()]
		if !ok {
			// A layer that cannot be read never blocks the listing.
			size = "N/A"
			if r.Image.Damaged == "" {
				if n, err := s.UnpackedSize(r.Image); err == nil {
					size = humanSize(n)
				}
			}
			sizes[r.Image.ID.String()] = size
		}
		created, since := "N/A", humanAgo(now, r.Image.Created)
		if !r.Image.Created.IsZero() {
			created = r.Image.Created.Local().Format("2006-01-02 15:04:05 -0700 MST")
		}
		if r.Image.Damaged != "" {
			since = "<damaged>"
			damaged = append(damaged, fmt.Sprintf("WARNING: image %s:%s (%s) is damaged: %s; build or pull it again (builder prune removes it)", r.Repo, r.Tag, id(r.Image), r.Image.Damaged))
		}
		items = append(items, imageSummary{Repository: r.Repo, Tag: r.Tag, ID: id(r.Image), Digest: r.Image.Manifest.Digest.String(),
			CreatedSince: since, CreatedAt: created, Size: size, CompressedSize: humanSize(r.Image.Size)})
	}
	if err := lf.write(w, items, imageHeaders); err != nil {
		return err
	}
	// The warnings follow a table only: a json or template output stays
	// parseable.
	if lf.table {
		for _, d := range damaged {
			fmt.Fprintln(w, d)
		}
	}
	return nil
}

// humanAgo formats the time since t as docker does ("2 weeks ago").
func humanAgo(now, t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return units.HumanDuration(now.Sub(t)) + " ago"
}

func newInspectCommand() *cobra.Command {
	var root, format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Show the config and manifest of stored images as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var tmpl *template.Template
			if format != "" && format != "json" {
				var err error
				if tmpl, err = template.New("format").Funcs(templateFuncs).Parse(format); err != nil {
					return fmt.Errorf("--format: %w", err)
				}
			}
			return withImageStore(root, func(s *imagestore.Store) error {
				if tmpl != nil {
					return inspectFormat(cmd.OutOrStdout(), s, args, tmpl)
				}
				out, errs := s.InspectAll(args)
				enc := json.NewEncoder(cmd.OutOrStdout())
				if format != "json" { // --format json is compact, as docker's
					enc.SetIndent("", "    ")
				}
				if err := enc.Encode(out); err != nil {
					return err
				}
				return errs
			})
		},
	}
	rootFlag(cmd, &root)
	cmd.Flags().StringVarP(&format, "format", "f", "", `Format output using a Go template, as docker inspect (docker's fields: {{.Id}}, {{.Config.Env}}, {{json .RootFS}})`)
	return cmd
}

// inspectFormat prints each image through tmpl, one per line, as docker
// inspect: the template runs on the typed document (an unset field is its
// zero value: "", [], 0), and when that fails (a field it does not have)
// on the JSON document, where a missing key is an error.
func inspectFormat(w io.Writer, s *imagestore.Store, refs []string, tmpl *template.Template) error {
	var errs []error
	for _, ref := range refs {
		x, err := s.Inspect(ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var b strings.Builder
		if tmpl.Execute(&b, x) != nil {
			b.Reset()
			raw, err := json.Marshal(x)
			if err != nil {
				return err
			}
			// Numbers stay as written (Size 1234567, not 1.234567e+06).
			var doc any
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&doc); err != nil {
				return err
			}
			strict, err := tmpl.Clone()
			if err != nil {
				return err
			}
			if err := strict.Option("missingkey=error").Execute(&b, doc); err != nil {
				return fmt.Errorf("--format: image %s: %w", ref, err)
			}
		}
		fmt.Fprintln(w, b.String())
	}
	return errors.Join(errs...)
}

func newTagCommand() *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Both names are checked before the store is opened.
			if err := exporter.ValidateReference(args[0]); err != nil {
				return fmt.Errorf("source image %q: %w", args[0], err)
			}
			if err := exporter.ValidateName(args[1]); err != nil {
				return fmt.Errorf("target image %q: %w", args[1], err)
			}
			return withImageStore(root, func(s *imagestore.Store) error { return s.Tag(args[0], args[1]) })
		},
	}
	rootFlag(cmd, &root)
	return cmd
}

func newRmiCommand() *cobra.Command {
	var root string
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images from the local image store",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRootImages(root, func(root *state.Root, s *imagestore.Store) error {
				var errs []error
				for _, a := range args {
					// As docker: an image a container uses stays.
					ctrs, err := root.ImageUsers()
					if err != nil {
						return err
					}
					r, err := s.Remove(a, force, ctrs)
					if err != nil {
						errs = append(errs, fmt.Errorf("Error response: %w", err))
						continue
					}
					for _, n := range r.Untagged {
						fmt.Fprintf(cmd.OutOrStdout(), "Untagged: %s\n", exporter.FamiliarName(n))
					}
					if r.Deleted != "" {
						fmt.Fprintf(cmd.OutOrStdout(), "Deleted: %s\n", r.Deleted)
					}
				}
				return errors.Join(errs...)
			})
		},
	}
	rootFlag(cmd, &root)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	return cmd
}

func newSaveCommand() *cobra.Command {
	var root, output, format string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "docker" && format != "oci" {
				return fmt.Errorf("--format %q: must be docker or oci", format)
			}
			toStdout := output == "" || output == "-"
			// As docker save: a terminal is refused before any work, while
			// a redirect to a character device such as /dev/null is not.
			if f, ok := cmd.OutOrStdout().(*os.File); ok && toStdout && pty.IsTerminal(int(f.Fd())) {
				return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			return withImageStore(root, func(s *imagestore.Store) error {
				imgs, err := s.SaveSet(args)
				if err != nil {
					return err
				}
				write := func(w io.Writer) error {
					if format == "oci" {
						_, err := exporter.WriteOCIImages(cmd.Context(), w, imgs)
						return err
					}
					_, err := exporter.WriteDockerImages(cmd.Context(), w, imgs)
					return err
				}
				if toStdout {
					return write(cmd.OutOrStdout())
				}
				return fsutil.WriteOutputFunc(output, write)
			})
		},
	}
	rootFlag(cmd, &root)
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	cmd.Flags().StringVar(&format, "format", "docker", `Archive format: "docker" (docker save) or "oci" (OCI image layout)`)
	return cmd
}

// humanSize is docker images' SIZE: decimal units, 3 significant digits.
func humanSize(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }
