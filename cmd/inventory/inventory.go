// Package inventory implements `sitectl inventory check|show|schema`.
package inventory

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	inv "github.com/sitectl/sitectl/inventory"
)

// NewCmdInventory builds the inventory command group.
func NewCmdInventory(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{Use: "inventory <command>", Short: "Validate and show the inventory, print its JSON Schema"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check [file]",
		Short: "Validate an inventory strictly; list every error with file:line:column",
		Long: `Validate an inventory strictly and list every error with file:line:column,
then check that the runbooks fit it (named services and hosts exist).
With -o json: one object per problem, with file, line, column and message.`,
		Args: cobra.MaximumNArgs(1),
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
			return checkRun(f, path)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Print the loaded inventory, with defaults applied, as JSON",
		Long: `Print the loaded inventory, with every default applied, as JSON keyed as in
the YAML file (it validates against ` + "`sitectl inventory schema`" + `).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			i, err := f.Inventory()
			if err != nil {
				return err
			}
			return cmdutil.WriteJSON(f.IO.Out, "inventory", map[string]any{"file": i.File, "digest": i.Digest, "inventory": inv.AsMap(i)})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "schema",
		Short: "Print the inventory's JSON Schema (draft 2020-12), for editors and CI",
		Long: `Print the JSON Schema (draft 2020-12) of an inventory file, generated from
sitectl's own types. Editors with the YAML language server use it when the
inventory's first line is

  # yaml-language-server: $schema=./schema.json

(save the output as schema.json next to it). The schema checks the shape
(keys, types, closed sets of values); ` + "`sitectl inventory check`" + ` also checks
the rules between fields.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return cmdutil.WriteJSONDoc(f.IO.Out, inv.Schema())
		},
	})
	return cmd
}

func checkRun(f *cmdutil.Factory, path string) error {
	jsonOut := f.Globals.JSON()
	result := map[string]any{"file": path, "ok": false, "problems": []cmdutil.Problem{}, "warnings": []cmdutil.Problem{}}
	i, err := inv.Load(path)
	if err != nil {
		if errors.Is(err, cmdutil.ErrNotExist) {
			return cmdutil.Exit(cmdutil.ExitUsage, fmt.Errorf("inventory %s not found (pass --inventory FILE or set SITECTL_INVENTORY)", path))
		}
		probs := cmdutil.ProblemsOf(err, "error")
		if jsonOut {
			result["problems"] = probs
			if err := cmdutil.WriteJSON(f.IO.Out, "inventory_check", result); err != nil {
				return err
			}
			return cmdutil.Silent(cmdutil.ExitUsage)
		} else {
			fmt.Fprintln(f.IO.Out, err)
		}
		return cmdutil.Exit(cmdutil.ExitUsage, fmt.Errorf("inventory %s: %d error(s)", path, len(probs)))
	}
	cat, err := f.Catalog(i)
	if err != nil {
		return err
	}
	errs, warns := cat.Lint(i)
	if jsonOut {
		result["warnings"] = cmdutil.ProblemsOf(warns, "warning")
		if len(warns) == 0 {
			result["warnings"] = []cmdutil.Problem{}
		}
	} else {
		for _, w := range warns {
			fmt.Fprintf(f.IO.ErrOut, "warning: %v\n", w)
		}
	}
	if len(errs) > 0 {
		if jsonOut {
			result["problems"] = cmdutil.ProblemsOf(errs, "error")
			if err := cmdutil.WriteJSON(f.IO.Out, "inventory_check", result); err != nil {
				return err
			}
			return cmdutil.Silent(cmdutil.ExitUsage)
		} else {
			fmt.Fprintln(f.IO.Out, errs)
		}
		return cmdutil.Exit(cmdutil.ExitUsage, fmt.Errorf("runbooks do not fit inventory %s: %d error(s)", path, len(errs)))
	}
	hosts, services := 0, 0
	for _, s := range i.Sites {
		hosts += len(s.Hosts)
		services += len(s.Services)
	}
	if jsonOut {
		result["ok"] = true
		result["deployment"] = i.Deployment
		result["sites"], result["hosts"], result["services"] = len(i.Sites), hosts, services
		return cmdutil.WriteJSON(f.IO.Out, "inventory_check", result)
	}
	fmt.Fprintf(f.IO.Out, "%s: OK (deployment %s, %d sites, %d hosts, %d services)\n", path, i.Deployment, len(i.Sites), hosts, services)
	return nil
}
