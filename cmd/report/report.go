// Package report implements `sitectl report <run>`: a Markdown report of a
// run with its timeline, per-step durations and measured RTO.
package report

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	journalCmd "github.com/sitectl/sitectl/cmd/journal"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// Options of sitectl report.
type Options struct {
	F   *cmdutil.Factory
	Run string
}

// NewCmdReport builds the command; runF replaces reportRun in tests.
func NewCmdReport(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{F: f}
	return &cobra.Command{
		Use:   "report <run>",
		Short: "Write a Markdown report of a run: timeline, durations, measured RTO",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Run = args[0]
			if runF != nil {
				return runF(c.Context(), opts)
			}
			r, err := journalCmd.Load(f, opts.Run)
			if err != nil {
				return err
			}
			return journal.Markdown(f.IO.Out, r)
		},
	}
}
