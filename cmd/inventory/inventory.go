// Package inventory implements `sitectl inventory check|show`.
package inventory

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	inv "github.com/sitectl/sitectl/inventory"
)

// NewCmdInventory builds the inventory command group.
func NewCmdInventory(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "inventory <command>", Short: "Validate and show the inventory"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check [file]",
		Short: "Validate an inventory strictly; list every error with file:line:column",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			path := f.Globals.Inventory
			if len(args) == 1 {
				path = args[0]
			}
			if path == "" {
				path = f.Getenv("SITECTL_INVENTORY")
			}
			if path == "" {
				return cmdutil.FlagErrorf("no inventory: pass a file, --inventory FILE or set SITECTL_INVENTORY")
			}
			i, err := inv.Load(path)
			if err != nil {
				var errs inv.Errors
				n := 1
				if errors.As(err, &errs) {
					n = len(errs)
				}
				fmt.Fprintln(f.IO.Out, err)
				return cmdutil.Exit(cmdutil.ExitUsage, fmt.Errorf("inventory %s: %d error(s)", path, n))
			}
			cat, err := f.Catalog(i)
			if err != nil {
				return err
			}
			errs, warns := cat.Lint(i)
			for _, w := range warns {
				fmt.Fprintf(f.IO.ErrOut, "warning: %v\n", w)
			}
			if len(errs) > 0 {
				fmt.Fprintln(f.IO.Out, errs)
				return cmdutil.Exit(cmdutil.ExitUsage, fmt.Errorf("runbooks do not fit inventory %s: %d error(s)", path, len(errs)))
			}
			hosts, services := 0, 0
			for _, s := range i.Sites {
				hosts += len(s.Hosts)
				services += len(s.Services)
			}
			fmt.Fprintf(f.IO.Out, "%s: OK (deployment %s, %d sites, %d hosts, %d services)\n", path, i.Deployment, len(i.Sites), hosts, services)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Print the loaded inventory, with defaults applied, as JSON",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			i, err := f.Inventory()
			if err != nil {
				return err
			}
			enc := json.NewEncoder(f.IO.Out)
			enc.SetIndent("", "  ")
			return enc.Encode(i)
		},
	})
	return cmd
}
