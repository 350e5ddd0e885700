package main

import (
	"io"

	"github.com/builderdev/builder/report"
	"github.com/spf13/cobra"
)

// newReportCommand is `builder report METADATA_FILE [-o FILE]`: the HTML
// report of a past build, from the file its --metadata-file wrote.
func newReportCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "report [OPTIONS] METADATA_FILE",
		Short: "Write the HTML report of a past build from its --metadata-file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return writeReportFromMetadata(args[0], output, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func writeReportFromMetadata(metadata, output string, stdout io.Writer) error {
	b, err := report.ReadMetadataFile(metadata)
	if err != nil {
		return err
	}
	if output == "" || output == "-" {
		return report.WriteHTML(stdout, b)
	}
	return writeReport(output, b)
}
