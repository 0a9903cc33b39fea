// Package runbook implements `sitectl runbook list|show|lint`.
package runbook

import (
	"errors"
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
				out := []map[string]any{}
				for _, rb := range cat.All() {
					out = append(out, map[string]any{"name": rb.Name, "description": rb.Description, "scope": rb.Scope, "effect": rb.Effect, "source": rb.Source, "digest": rb.Digest()})
				}
				return cmdutil.WriteJSON(f.IO.Out, "runbook_list", map[string]any{"runbooks": out})
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
			if f.Globals.JSON() {
				return cmdutil.WriteJSON(f.IO.Out, "runbook", map[string]any{"name": rb.Name, "description": rb.Description, "scope": rb.Scope, "effect": rb.Effect, "source": rb.Source, "digest": rb.Digest(), "yaml": string(rb.Raw)})
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
		Long: `Parse every runbook strictly and report every problem with file:line:column.
With an inventory, also check that named services and hosts exist.
With -o json: one object per problem (file, line, column, message, severity)
in "problems", warnings in "warnings"; exit 2 when there is a problem.`,
		RunE: func(c *cobra.Command, args []string) error {
			f.Globals.Runbooks = append(f.Globals.Runbooks, args...)
			return lintRun(f)
		},
	}
}

func lintRun(f *cmdutil.Factory) error {
	report := func(n int, errs, warns error) error {
		probs, ws := cmdutil.ProblemsOf(errs, "error"), cmdutil.ProblemsOf(warns, "warning")
		if f.Globals.JSON() {
			if err := cmdutil.WriteJSON(f.IO.Out, "runbook_lint", map[string]any{"ok": len(probs) == 0, "runbooks": n, "problems": probs, "warnings": ws}); err != nil {
				return err
			}
		} else {
			for _, w := range ws {
				fmt.Fprintf(f.IO.ErrOut, "warning: %s:%d:%d: %s\n", w.File, w.Line, w.Column, w.Message)
			}
		}
		if len(probs) > 0 {
			err := cmdutil.Exit(cmdutil.ExitUsage, fmt.Errorf("%d problem(s):\n%w", len(probs), errs))
			if f.Globals.JSON() {
				return cmdutil.Silent(cmdutil.ExitUsage)
			}
			return err
		}
		if !f.Globals.JSON() {
			fmt.Fprintf(f.IO.Out, "%d runbooks OK\n", n)
		}
		return nil
	}
	cat, err := f.Catalog(nil)
	if err != nil {
		return report(0, errors.Unwrap(err), nil)
	}
	if f.Globals.Inventory == "" && f.Getenv("SITECTL_INVENTORY") == "" {
		return report(len(cat.Names()), nil, nil)
	}
	inv, err := f.Inventory()
	if err != nil {
		return err
	}
	if cat, err = f.Catalog(inv); err != nil {
		return report(0, errors.Unwrap(err), nil)
	}
	errs, warns := cat.Lint(inv)
	var e, w error
	if len(errs) > 0 {
		e = errs
	}
	if len(warns) > 0 {
		w = warns
	}
	return report(len(cat.Names()), e, w)
}
