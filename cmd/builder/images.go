package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/builderdev/builder/executor/pty"
	"github.com/builderdev/builder/exporter"
	imagestore "github.com/builderdev/builder/exporter/store"
	"github.com/builderdev/builder/state"
	"github.com/docker/go-units"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
)

// withImageStore opens the image store under dir for fn.
func withImageStore(dir string, fn func(s *imagestore.Store) error) error {
	root, err := state.Open(dir, state.Options{})
	if err != nil {
		return err
	}
	defer root.Close()
	s, err := root.Images()
	if err != nil {
		return err
	}
	return fn(s)
}

// rootFlag adds --root, the state directory of every command.
func rootFlag(cmd *cobra.Command, root *string) {
	cmd.Flags().StringVar(root, "root", defaultRoot(), "Directory for the builder's state (cache, blobs, snapshots); env BUILDER_ROOT")
}

func newImagesCommand() *cobra.Command {
	var root string
	var quiet, noTrunc bool
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images in the local image store",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withImageStore(root, func(s *imagestore.Store) error {
				all, err := s.List()
				if err != nil {
					return err
				}
				filter := ""
				if len(args) == 1 {
					filter = args[0]
				}
				return printImages(cmd.OutOrStdout(), all, filter, quiet, noTrunc, time.Now())
			})
		},
	}
	rootFlag(cmd, &root)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	return cmd
}

// imageRow is one line of `builder images`.
type imageRow struct {
	repo, tag string
	im        imagestore.Image
}

// rows lists one row per name (<none> for unnamed images), filtered by
// REPOSITORY[:TAG] as docker images filters.
func rows(all []imagestore.Image, filter string) []imageRow {
	var out []imageRow
	frepo, ftag, _ := strings.Cut(filter, ":")
	if strings.Contains(ftag, "/") { // host:port/repo
		frepo, ftag = filter, ""
		if i := strings.LastIndex(filter, ":"); i > strings.LastIndex(filter, "/") {
			frepo, ftag = filter[:i], filter[i+1:]
		}
	}
	for _, im := range all {
		if len(im.Names) == 0 {
			if filter == "" {
				out = append(out, imageRow{"<none>", "<none>", im})
			}
			continue
		}
		for _, n := range im.Names {
			short := exporter.FamiliarName(n)
			i := strings.LastIndex(short, ":")
			repo, tag := short[:i], short[i+1:]
			if filter != "" {
				if frepo != repo && frepo != n[:strings.LastIndex(n, ":")] {
					continue
				}
				if ftag != "" && ftag != tag {
					continue
				}
			}
			out = append(out, imageRow{repo, tag, im})
		}
	}
	return out
}

func printImages(w io.Writer, all []imagestore.Image, filter string, quiet, noTrunc bool, now time.Time) error {
	id := func(im imagestore.Image) string {
		if noTrunc {
			return im.ID.String()
		}
		return im.ID.Encoded()[:12]
	}
	rs := rows(all, filter)
	if quiet {
		seen := map[string]bool{}
		for _, r := range rs {
			if !seen[id(r.im)] {
				seen[id(r.im)] = true
				fmt.Fprintln(w, id(r.im))
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
	var damaged []string
	for _, r := range rs {
		created := humanAgo(now, r.im.Created)
		if r.im.Damaged != "" {
			created = "<damaged>"
			damaged = append(damaged, fmt.Sprintf("WARNING: image %s:%s (%s) is damaged: %s; build or pull it again (builder prune removes it)", r.repo, r.tag, id(r.im), r.im.Damaged))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.repo, r.tag, id(r.im), created, units.HumanSizeWithPrecision(float64(r.im.Size), 3))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range damaged {
		fmt.Fprintln(w, d)
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
	var root string
	cmd := &cobra.Command{
		Use:   "inspect NAME|ID [NAME|ID...]",
		Short: "Show the config and manifest of stored images as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withImageStore(root, func(s *imagestore.Store) error {
				out := []any{}
				var errs []error
				for _, a := range args {
					x, err := inspectImage(s, a)
					if err != nil {
						errs = append(errs, err)
						continue
					}
					out = append(out, x)
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "    ")
				if err := enc.Encode(out); err != nil {
					return err
				}
				return errors.Join(errs...)
			})
		},
	}
	rootFlag(cmd, &root)
	return cmd
}

// imageInspect is one element of `builder inspect`'s output: Docker's
// image inspect fields plus the manifest and its descriptor.
type imageInspect struct {
	ID           string          `json:"Id"`
	RepoTags     []string        `json:"RepoTags"`
	Created      time.Time       `json:"Created"`
	Architecture string          `json:"Architecture"`
	Os           string          `json:"Os"`
	Variant      string          `json:"Variant,omitempty"`
	Size         int64           `json:"Size"`
	Author       string          `json:"Author,omitempty"`
	Config       v1.Config       `json:"Config"`
	RootFS       v1.RootFS       `json:"RootFS"`
	History      []v1.History    `json:"History,omitempty"`
	Descriptor   v1.Descriptor   `json:"Descriptor"`
	Manifest     json.RawMessage `json:"Manifest"`
}

func inspectImage(s *imagestore.Store, ref string) (*imageInspect, error) {
	im, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	rawManifest, rawConfig, err := s.Raw(im)
	if err != nil {
		return nil, err
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(rawConfig, &cfg); err != nil {
		return nil, fmt.Errorf("image %s: config: %w", ref, err)
	}
	x := &imageInspect{
		ID: im.ID.String(), RepoTags: []string{}, Created: cfg.Created.Time,
		Architecture: cfg.Architecture, Os: cfg.OS, Variant: cfg.Variant, Size: im.Size,
		Author: cfg.Author, Config: cfg.Config, RootFS: cfg.RootFS, History: cfg.History,
		Descriptor: im.Manifest, Manifest: rawManifest,
	}
	for _, n := range im.Names {
		x.RepoTags = append(x.RepoTags, exporter.FamiliarName(n))
	}
	return x, nil
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
			return withImageStore(root, func(s *imagestore.Store) error {
				var errs []error
				for _, a := range args {
					r, err := s.Remove(a, force)
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
				imgs, err := saveSet(s, args)
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
				return writeFile(output, write)
			})
		},
	}
	rootFlag(cmd, &root)
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	cmd.Flags().StringVar(&format, "format", "docker", `Archive format: "docker" (docker save) or "oci" (OCI image layout)`)
	return cmd
}

// saveSet resolves the images to save, once each with every name it was
// asked by (an image asked by ID keeps all its names), in order.
func saveSet(s *imagestore.Store, refs []string) ([]exporter.NamedImage, error) {
	var out []exporter.NamedImage
	at := map[string]int{}
	for _, ref := range refs {
		im, err := s.Get(ref)
		if err != nil {
			return nil, err
		}
		names := im.Names
		if full, err := exporter.NormalizeName(ref); err == nil {
			names = []string{full} // docker save NAME keeps only that name
		}
		if i, ok := at[im.ID.String()]; ok {
			out[i].Names = append(out[i].Names, names...)
			continue
		}
		img, err := s.Load(im)
		if err != nil {
			return nil, err
		}
		at[im.ID.String()] = len(out)
		out = append(out, exporter.NamedImage{Image: img, Names: append([]string(nil), names...)})
	}
	return out, nil
}
