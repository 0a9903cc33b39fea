// Package runbook implements `sitectl runbook list|show|lint`.
package runbook

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/cmd/cmdutil"
)

// NewCmdRunbook builds the runbook command group.
func NewCmdRunbook(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "runbook <command>", Short: "List, show and lint runbooks"}
	cmd.AddCommand(newCmdList(f), newCmdShow(f), newCmdLint(f))
	return cmd
}

func newCmdList(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the available runbooks (built in and user supplied)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			inv, _ := f.Inventory() // optional: adds the inventory's runbooks
			cat, err := f.Catalog(inv)
			if err != nil {
				return err
			}
			if f.Globals.JSON() {
				type item struct{ Name, Description, Scope, Effect, Source string }
				var out []item
				for _, rb := range cat.All() {
					out = append(out, item{rb.Name, rb.Description, rb.Scope, rb.Effect, rb.Source})
				}
				return json.NewEncoder(f.IO.Out).Encode(out)
			}
			tw := tabwriter.NewWriter(f.IO.Out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSCOPE\tEFFECT\tSOURCE\tDESCRIPTION")
			for _, rb := range cat.All() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", rb.Name, rb.Scope, rb.Effect, rb.Source, rb.Description)
			}
			return tw.Flush()
		},
	}
}

func newCmdShow(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "show <runbook>",
		Short: "Print a runbook's YAML source",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			inv, _ := f.Inventory()
			cat, err := f.Catalog(inv)
			if err != nil {
				return err
			}
			rb, err := cat.Get(args[0])
			if err != nil {
				return cmdutil.Exit(cmdutil.ExitUsage, err)
			}
			fmt.Fprintf(f.IO.Out, "# source: %s (digest %s)\n%s", rb.Source, rb.Digest(), rb.Raw)
			return nil
		},
	}
}

func newCmdLint(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "lint [file...]",
		Short: "Check runbooks (and, with --inventory, that they fit it)",
		Long:  "Parse every runbook strictly and report every problem with file:line:column. With an inventory, also check that named services and hosts exist.",
		RunE: func(c *cobra.Command, args []string) error {
			f.Globals.Runbooks = append(f.Globals.Runbooks, args...)
			cat, err := f.Catalog(nil)
			if err != nil {
				return err
			}
			n := len(cat.Names())
			if f.Globals.Inventory != "" || f.Getenv("SITECTL_INVENTORY") != "" {
				inv, err := f.Inventory()
				if err != nil {
					return err
				}
				if cat, err = f.Catalog(inv); err != nil {
					return err
				}
				errs, warns := cat.Lint(inv)
				for _, w := range warns {
					fmt.Fprintf(f.IO.ErrOut, "warning: %v\n", w)
				}
				if len(errs) > 0 {
					return cmdutil.Exit(cmdutil.ExitUsage, fmt.Errorf("%d problem(s):\n%w", len(errs), errs))
				}
				n = len(cat.Names())
			}
			fmt.Fprintf(f.IO.Out, "%d runbooks OK\n", n)
			return nil
		},
	}
}
