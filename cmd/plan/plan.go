// Package plan implements `sitectl plan`: the exact ordered steps a runbook
// would run, per host, observed read-only (or not at all with --offline).
package plan

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/sitectl/sitectl/cmd/internal/render"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/runbooks"
	"github.com/sitectl/sitectl/runbooks/event"
)

// Options of sitectl plan.
type Options struct {
	F       *cmdutil.Factory
	Runbook string
	Site    string
	Offline bool
	All     bool   // every runbook for every site
	Format  string // text (default), json or junit
}

// NewCmdPlan builds the command; runF replaces planRun in tests.
func NewCmdPlan(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "plan <runbook> --site <site>",
		Short: "Show the exact steps a runbook would run, without changing anything",
		Long: `Show, per step and host, the commands a runbook would run against a site.

Without --offline, plan connects read-only and marks which steps already hold
(they would be skipped) and which cannot be simulated. With --offline it makes
no connection at all: this is the CI dry-run; it still fails on an invalid
inventory or runbook.`,
		Example: `  sitectl plan takeover --site B --offline --inventory inventory/example.yaml
  sitectl plan switchover --site A -o json
  sitectl plan --all --offline --format junit > plan.xml   # CI: every runbook, every site`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			switch opts.Format {
			case "":
				opts.Format = f.Globals.Output
			case "text", "json", "junit":
			default:
				return cmdutil.FlagErrorf("--format %q: expected text, json or junit", opts.Format)
			}
			if opts.All {
				if len(args) > 0 || opts.Site != "" {
					return cmdutil.FlagErrorf("--all plans every runbook for every site: give no runbook and no --site")
				}
				if runF != nil {
					return runF(c.Context(), opts)
				}
				return planAllRun(c.Context(), opts)
			}
			if len(args) != 1 {
				return cmdutil.FlagErrorf("expected a runbook (or --all)")
			}
			if opts.Format == "junit" {
				return cmdutil.FlagErrorf("--format junit goes with --all")
			}
			opts.Runbook = args[0]
			if opts.Site == "" {
				return cmdutil.FlagErrorf("--site is required")
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return planRun(c.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Site, "site", "s", "", "site the runbook acts on (required)")
	cmd.Flags().BoolVar(&opts.Offline, "offline", false, "make no connection at all (CI dry-run)")
	cmd.Flags().BoolVar(&opts.All, "all", false, "plan every runbook for every site of the inventory")
	cmd.Flags().StringVar(&opts.Format, "format", "", "output format: text, json or junit (JUnit XML, with --all; default: --output)")
	return cmd
}

func planRun(ctx context.Context, opts *Options) error {
	f := opts.F
	inv, cat, err := f.InventoryAndRunbooks()
	if err != nil {
		return err
	}
	op := &runbooks.Operation{Inventory: inv, Catalog: cat, Runbook: opts.Runbook, Site: opts.Site, Mode: runbooks.DryRun, Hint: cmdutil.TaskHint(inv),
		Info: event.RunInfo{Overrides: cat.Overrides()}}
	if opts.Offline {
		op.Mode = runbooks.Offline
	} else {
		pool := f.Pool(inv)
		defer pool.Close()
		op.Runner = pool
	}
	if f.Globals.Verbose && opts.Format != "json" {
		op.Sink = render.For(f) // prints the overrides with the run's start
	} else {
		for _, o := range cat.Overrides() {
			fmt.Fprintf(f.IO.ErrOut, "! runbook override: %s\n", o)
		}
	}
	rep, err := op.Run(ctx)
	if rep == nil || rep.Result == nil {
		if ctx.Err() != nil {
			return err
		}
		return cmdutil.Exit(cmdutil.ExitUsage, err) // the runbook could not be compiled for this site
	}
	if opts.Format == "json" {
		if err := writeJSON(f.IO.Out, rep, opts.Offline); err != nil {
			return err
		}
	} else {
		Write(f.IO.Out, rep, opts.Offline)
	}
	if runbooks.IsRefused(err) {
		if opts.Format != "json" {
			fmt.Fprintf(f.IO.Out, "\nThe run would be REFUSED: %v\n", err)
		}
		return cmdutil.Silent(cmdutil.ExitRefused)
	}
	return err
}

// Write prints a plan for people.
func Write(w io.Writer, rep *runbooks.Report, offline bool) {
	p := rep.Plan
	fmt.Fprintf(w, "Plan: %s --site %s   (deployment %s, inventory %s)\n", p.Runbook.Name, p.Site, p.Inventory.Deployment, p.Inventory.File)
	fmt.Fprintf(w, "Runbook %s: %s [%s]\n", p.Runbook.Name, p.Runbook.Description, p.Runbook.Source)
	if offline {
		fmt.Fprintln(w, "Offline: no connection made; nothing observed. Each task is shown as it would run.")
	} else {
		for _, s := range rep.Before {
			fmt.Fprintf(w, "Now: %s\n", runbooks.DescribeSite(s))
		}
		fmt.Fprintf(w, "Invariant: %s\n", rep.InvariantBefore.Message)
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warn)
	}
	results := map[string]runbooks.TaskResult{}
	for _, r := range rep.Result.Tasks {
		results[r.ID] = r
	}
	for i, wave := range p.Levels() {
		var after []string
		for _, s := range wave {
			after = append(after, s.After...)
		}
		fmt.Fprintln(w)
		if len(after) == 0 {
			fmt.Fprintf(w, "Wave %d (steps in parallel):\n", i+1)
		} else {
			fmt.Fprintf(w, "Wave %d (after %s):\n", i+1, strings.Join(dedupe(after), ", "))
		}
		for _, s := range wave {
			desc := ""
			if s.Description != "" {
				desc = " — " + s.Description
			}
			fmt.Fprintf(w, "  %s: %s on site %s%s\n", s.Name, s.Action, s.Site, desc)
			if len(s.Tasks) == 0 {
				fmt.Fprintf(w, "      (selects nothing on site %s: nothing to do)\n", s.Site)
			}
			for _, t := range s.Tasks {
				r := results[t.ID]
				fmt.Fprintf(w, "    %-24s %s\n", where(t), verdict(r, t))
				if t.Observe != "" {
					fmt.Fprintf(w, "        observe: %s\n", t.Observe)
				} else {
					fmt.Fprintf(w, "        observe: (none: cannot be simulated)\n")
				}
				fmt.Fprintf(w, "        act:     %s\n", t.Act)
				fmt.Fprintf(w, "        verify:  %s within %s\n", desired(t), t.VerifyTimeout)
			}
		}
	}
	if hooks := p.Hooks(); len(hooks) > 0 {
		fmt.Fprintf(w, "\nHooks (%d; docs/operations.md):\n", len(hooks))
		for _, h := range hooks {
			point := h.Point
			if h.Step != "" {
				point += " " + h.Step
			}
			host := "this machine"
			if h.Host != "" {
				host = h.Host
			}
			fmt.Fprintf(w, "  %-28s %q on %s (%s hooks; timeout %s; on error: %s)\n", point, h.Name, host, h.Source, h.Timeout, h.OnError)
			if h.Name != h.Command {
				fmt.Fprintf(w, "      command: %s\n", h.Command)
			}
		}
	}
	c := rep.Result.Counts()
	nobs := 0
	for _, t := range p.Tasks() {
		if !t.Observable() {
			nobs++
		}
	}
	fmt.Fprintf(w, "\n%d tasks: %d would run, %d already satisfied, %d cannot be simulated\n", len(rep.Result.Tasks), c[event.Planned], c[event.Skipped], nobs)
}

func desired(t *runbooks.Task) string {
	switch {
	case t.Probe == nil:
		return t.Desired
	case t.Probe.TCP != "":
		return t.Desired + " and tcp " + t.Probe.TCP + " accepts"
	}
	return fmt.Sprintf("%s and GET %s answers %d", t.Desired, t.Probe.HTTP, t.Probe.Status)
}

func where(t *runbooks.Task) string {
	if t.Service == "" {
		return t.Host
	}
	return t.Host + "/" + t.Service
}

func verdict(r runbooks.TaskResult, t *runbooks.Task) string {
	switch r.Outcome {
	case event.Skipped:
		return "skip: " + r.Message
	case event.Planned:
		verb := t.Action
		switch t.Layer {
		case runbooks.ActionHAProxy:
			verb = "set servers " + t.Spec.State
		case runbooks.ActionMongoDB:
			verb = "wait for a writable primary"
			if t.Spec.Mode == "move" {
				verb = "move the primary to site " + t.Site
			}
		case runbooks.ActionActiveMQ:
			verb = "verify consumer priority"
		}
		if r.Offline {
			return "would " + verb
		}
		return fmt.Sprintf("would %s (now %s)", verb, r.Observed)
	}
	return string(r.Outcome) + ": " + r.Message
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

type jsonTask struct {
	ID       string        `json:"id"`
	Host     string        `json:"host"`
	Service  string        `json:"service,omitempty"`
	Action   string        `json:"action"`
	Observe  string        `json:"observe,omitempty"`
	Act      string        `json:"act"`
	Desired  string        `json:"desired"`
	Outcome  event.Outcome `json:"outcome"`
	Observed string        `json:"observed"`
	Message  string        `json:"message,omitempty"`
}

type jsonStep struct {
	Name  string     `json:"name"`
	Site  string     `json:"site"`
	After []string   `json:"after"`
	Wave  int        `json:"wave"`
	Tasks []jsonTask `json:"tasks"`
}

func writeJSON(w io.Writer, rep *runbooks.Report, offline bool) error {
	results := map[string]runbooks.TaskResult{}
	if rep.Result != nil {
		for _, r := range rep.Result.Tasks {
			results[r.ID] = r
		}
	}
	var steps []jsonStep
	for i, wave := range rep.Plan.Levels() {
		for _, s := range wave {
			js := jsonStep{Name: s.Name, Site: s.Site, After: append([]string{}, s.After...), Wave: i + 1, Tasks: []jsonTask{}}
			for _, t := range s.Tasks {
				r := results[t.ID]
				js.Tasks = append(js.Tasks, jsonTask{ID: t.ID, Host: t.Host, Service: t.Service, Action: t.Action, Observe: t.Observe, Act: t.Act, Desired: t.Desired, Outcome: r.Outcome, Observed: r.Observed, Message: r.Message})
			}
			steps = append(steps, js)
		}
	}
	out := map[string]any{
		"runbook": rep.Plan.Runbook.Name, "site": rep.Plan.Site, "offline": offline,
		"inventory": rep.Plan.Inventory.File, "steps": steps, "warnings": rep.Warnings,
		"hooks": rep.Plan.Hooks(),
	}
	if !offline {
		out["before"] = rep.Before
		out["invariant"] = rep.InvariantBefore
	}
	return cmdutil.WriteJSON(w, "plan", out)
}
