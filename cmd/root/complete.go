package root

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// completions wires the dynamic shell completions (docs/completions.md):
// sites, runbooks, hosts and services from the inventory and the runbook
// catalog, run ids from the journal, newest first, described by their
// runbook and outcome. They are registered here, by flag and command name,
// so each command stays free of completion code.
func completions(root *cobra.Command, f *cmdutil.Factory) {
	sites := completeSites(f)
	runbookNames, runIDs := completeRunbooks(f), completeRunIDs(f)
	_ = root.RegisterFlagCompletionFunc("inventory", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	})
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]cobra.Completion{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	byFlag := map[string]cobra.CompletionFunc{"site": sites, "fenced": sites, "confirm-site": sites, "host": completeHosts(f), "service": completeServices(f)}
	byCommand := map[string]cobra.CompletionFunc{
		"sitectl run": runbookNames, "sitectl plan": runbookNames, "sitectl runbook show": runbookNames,
		"sitectl resume": runIDs, "sitectl report": runIDs, "sitectl journal show": runIDs,
		"sitectl inventory check": completeYAMLFiles(),
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for name, fn := range byFlag {
			if c.LocalNonPersistentFlags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, fn)
			}
		}
		if fn, ok := byCommand[c.CommandPath()]; ok && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = fn
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

// completeSites completes a site name: the inventory's sites with their
// role and number of hosts.
func completeSites(f *cmdutil.Factory) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		inv, err := f.Inventory()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, s := range inv.Sites {
			out = append(out, cobra.CompletionWithDesc(s.Name, fmt.Sprintf("%s, %d hosts", s.Role, len(s.Hosts))))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeHosts completes a host name: the inventory's hosts with their site.
func completeHosts(f *cmdutil.Factory) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		inv, err := f.Inventory()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, s := range inv.Sites {
			for _, h := range s.Hosts {
				out = append(out, cobra.CompletionWithDesc(h.Name, "site "+s.Name))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeServices completes a service name: the inventory's services, once
// each, with their kind and group.
func completeServices(f *cmdutil.Factory) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		inv, err := f.Inventory()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		seen := map[string]bool{}
		var out []cobra.Completion
		for _, s := range inv.Sites {
			for _, svc := range s.Services {
				if !seen[svc.Name] {
					seen[svc.Name] = true
					out = append(out, cobra.CompletionWithDesc(svc.Name, fmt.Sprintf("%s, %s group", svc.Kind, svc.Group)))
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeRunbooks completes the runbook argument: the catalog's runbooks
// (with the inventory's when it loads) and their description.
func completeRunbooks(f *cmdutil.Factory) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		inv, _ := f.Inventory() // optional: adds the inventory's runbooks
		cat, err := f.Catalog(inv)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, rb := range cat.All() {
			out = append(out, cobra.CompletionWithDesc(rb.Name, rb.Description))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeRunIDs completes the run id argument: the journal's runs, newest
// first.
func completeRunIDs(f *cmdutil.Factory) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return RunCompletions(f), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
	}
}

// completeYAMLFiles completes the file argument with YAML files.
func completeYAMLFiles() cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return []cobra.Completion{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	}
}

// RunCompletions lists the journal's runs, newest first, each described by
// its runbook, site, outcome and start time.
func RunCompletions(f *cmdutil.Factory) []cobra.Completion {
	dir, err := f.StateDir()
	if err != nil {
		return nil
	}
	runs, err := journal.List(dir)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, r := range runs {
		out = append(out, cobra.CompletionWithDesc(r.ID, fmt.Sprintf("%s --site %s: %s, %s", r.Runbook, r.Site, r.Outcome, r.Started.Local().Format(time.DateTime))))
	}
	return out
}
