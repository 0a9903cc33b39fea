// Package journal implements `sitectl journal list|show`.
package journal

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/sitectl/sitectl/cmd/internal/render"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/cmd/internal/runexec"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// NewCmdJournal builds the journal command group.
func NewCmdJournal(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "journal <command>", Short: "List and show the journals of past runs"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List runs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			dir, err := f.StateDir()
			if err != nil {
				return err
			}
			runs, err := journal.List(dir)
			if err != nil {
				return err
			}
			if f.Globals.JSON() {
				if runs == nil {
					runs = []journal.Summary{}
				}
				return cmdutil.WriteJSON(f.IO.Out, "journal_list", map[string]any{"runs": runs})
			}
			tw := tabwriter.NewWriter(f.IO.Out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tRUNBOOK\tSITE\tUSER\tSTARTED\tDURATION\tOUTCOME\tRESUMES")
			for _, r := range runs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Runbook, r.Site, r.User, r.Started.Local().Format(time.DateTime), r.Duration.Round(time.Millisecond), r.Outcome, r.ResumeOf)
			}
			return tw.Flush()
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "show <run>",
		Short: "Show every event of a run (a unique prefix of the id is enough)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			r, err := runexec.Load(f, args[0])
			if err != nil {
				return err
			}
			if f.Globals.JSON() {
				for _, e := range r.Events {
					if err := cmdutil.WriteJSONLine(f.IO.Out, "event", e); err != nil {
						return err
					}
				}
				return nil
			}
			tr := &render.TextRenderer{W: f.IO.Out, Verbose: true}
			for _, e := range r.Events {
				fmt.Fprintf(f.IO.Out, "%s ", e.Time.Local().Format("15:04:05.000"))
				tr.Emit(e)
			}
			if r.Truncated {
				fmt.Fprintln(f.IO.Out, "(the last record was cut short: the run was killed while writing it)")
			}
			if r.Interrupted() {
				fmt.Fprintf(f.IO.Out, "The run never ended (killed or crashed). Finish it with: sitectl resume %s\n", r.ID())
			}
			return nil
		},
	})
	return cmd
}
