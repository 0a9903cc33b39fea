// Package root assembles sitectl's command tree and its single exit point.
package root

import (
	"fmt"

	"github.com/spf13/cobra"

	boardCmd "github.com/sitectl/sitectl/cmd/board"
	checkCmd "github.com/sitectl/sitectl/cmd/check"
	"github.com/sitectl/sitectl/cmd/cmdutil"
	exporterCmd "github.com/sitectl/sitectl/cmd/exporter"
	inventoryCmd "github.com/sitectl/sitectl/cmd/inventory"
	journalCmd "github.com/sitectl/sitectl/cmd/journal"
	manCmd "github.com/sitectl/sitectl/cmd/man"
	planCmd "github.com/sitectl/sitectl/cmd/plan"
	reportCmd "github.com/sitectl/sitectl/cmd/report"
	resumeCmd "github.com/sitectl/sitectl/cmd/resume"
	runCmd "github.com/sitectl/sitectl/cmd/run"
	runbookCmd "github.com/sitectl/sitectl/cmd/runbook"
	statusCmd "github.com/sitectl/sitectl/cmd/status"
	unlockCmd "github.com/sitectl/sitectl/cmd/unlock"
	versionCmd "github.com/sitectl/sitectl/cmd/version"
)

// NewCmdRoot builds the command tree.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sitectl <command>",
		Short: "Move a two-site contact-center deployment between its sites, safely",
		Long: `sitectl takes a site over and renounces it by running idempotent runbooks
over SSH (observe, skip what already holds, act, verify before a deadline),
refuses to make both sites active, journals every run and resumes a
half-finished one.

Start with:
  sitectl plan takeover --site B --offline --inventory inventory/example.yaml
  sitectl check --site B
  sitectl takeover --site B

` + cmdutil.ExitCodesHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	g := f.Globals
	pf := cmd.PersistentFlags()
	pf.StringVarP(&g.Inventory, "inventory", "i", "", "inventory file (default $SITECTL_INVENTORY)")
	pf.StringVarP(&g.Output, "output", "o", "text", "output format: text or json")
	pf.DurationVar(&g.Timeout, "timeout", 0, "deadline for the whole command, e.g. 10m (0: none)")
	pf.BoolVarP(&g.Verbose, "verbose", "v", false, "show every event, including observations and verification polls")
	pf.StringSliceVar(&g.Runbooks, "runbooks", nil, "extra runbook files or directories (also $SITECTL_RUNBOOKS)")

	for _, name := range []string{"takeover", "renounce", "takeover-reporting", "renounce-reporting", "switchover", "up"} {
		cmd.AddCommand(runCmd.NewCmdRunbook(f, name, nil))
	}
	cmd.AddCommand(
		runCmd.NewCmdRun(f, nil),
		planCmd.NewCmdPlan(f, nil),
		checkCmd.NewCmdCheck(f, nil),
		statusCmd.NewCmdStatus(f, nil),
		boardCmd.NewCmdBoard(f, nil),
		exporterCmd.NewCmdExporter(f, nil),
		runbookCmd.NewCmdRunbook(f),
		inventoryCmd.NewCmdInventory(f),
		journalCmd.NewCmdJournal(f),
		resumeCmd.NewCmdResume(f, nil),
		reportCmd.NewCmdReport(f, nil),
		unlockCmd.NewCmdUnlock(f, nil),
		versionCmd.NewCmdVersion(f),
	)
	cmd.AddCommand(&cobra.Command{
		Use:   "exit-codes",
		Short: "The exit status contract (for scripts and CI)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if f.Globals.JSON() {
				return cmdutil.WriteJSON(f.IO.Out, "exit_codes", map[string]any{"codes": cmdutil.ExitCodes})
			}
			fmt.Fprintln(f.IO.Out, cmdutil.ExitCodesHelp)
			return nil
		},
	})
	cmd.AddCommand(manCmd.NewCmdMan(f))
	usageErrors(cmd)
	completions(cmd, f)
	return cmd
}
