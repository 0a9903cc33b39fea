// Package report implements `sitectl report <run>`: a Markdown report of a
// run with its timeline, per-step durations and measured RTO.
package report

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/cmd/internal/runexec"
	"github.com/sitectl/sitectl/runbooks"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// Options of sitectl report.
type Options struct {
	F      *cmdutil.Factory
	Run    string
	Format string // markdown (default), html or json
}

// NewCmdReport builds the command; runF replaces reportRun in tests.
func NewCmdReport(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "report <run>",
		Short: "Write a report of a run (Markdown, HTML or JSON): timeline, durations, measured RTO, where the time went",
		Long: `Write the report of a run from its journal: outcome, verdict before and
after, measured RTO, timeline, per-step durations, the critical path, and
failures with the command to inspect them.

--format markdown (the default) prints Markdown. --format html prints one
self-contained HTML file (no script, nothing fetched) with an SVG timeline
of every task per site and host, the run's start, the election, the first
service up, the verdict and the RTO marked, and the critical path outlined.
--format json (or -o json) prints the same numbers as one JSON document.`,
		Example: `  sitectl report 20261202T101500Z-1a2b3c > run.md
  sitectl report 20261202T101500Z --format html > run.html`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Run = args[0]
			switch opts.Format {
			case "":
				opts.Format = "markdown"
				if f.Globals.JSON() {
					opts.Format = "json"
				}
			case "markdown", "html", "json":
			default:
				return cmdutil.FlagErrorf("--format %q: expected markdown, html or json", opts.Format)
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return reportRun(c.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Format, "format", "", "markdown (default), html or json")
	return cmd
}

func reportRun(_ context.Context, opts *Options) error {
	f := opts.F
	r, err := runexec.Load(f, opts.Run)
	if err != nil {
		return err
	}
	plan, why := planOf(f, r)
	if opts.Format == "json" {
		return writeJSON(f, r, plan, why)
	}
	var b bytes.Buffer
	if opts.Format == "html" {
		if err := writeHTML(&b, r, plan, why); err != nil {
			return err
		}
	} else {
		if err := journal.Markdown(&b, r); err != nil {
			return err
		}
		writeTime(&b, runbooks.CriticalPath(r, plan), why)
	}
	// the journal was redacted when written; the report goes through the
	// same redactor again, with the inventory's secrets of today
	_, err = io.WriteString(f.IO.Out, f.Redact(b.String()))
	return err
}

// planOf is the run's plan for the order of its steps, or why there is none.
func planOf(f *cmdutil.Factory, r journal.Run) (*runbooks.Plan, string) {
	if r.Info == nil || r.Info.Runbook == "" {
		return nil, "the journal has no run.start record"
	}
	p, err := runexec.Plan(f, r.Info)
	if err != nil {
		return nil, err.Error()
	}
	return p, ""
}

// writeTime appends "Where the time went": what the deployment itself made
// the run wait for (the critical path) against everything else.
func writeTime(w io.Writer, p runbooks.PathReport, why string) {
	fmt.Fprintf(w, "\n## Where the time went\n\n")
	rows := timeRows(p, why)
	if len(rows) == 0 {
		fmt.Fprintf(w, "The run has no duration to split.\n")
		return
	}
	fmt.Fprintf(w, "| part | time |\n|---|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s |\n", r[0], r[1])
	}
	if p.NoSteps {
		return
	}
	if why != "" {
		fmt.Fprintf(w, "\nThe critical path is not computed: %s.\n", why)
	}
	fmt.Fprintf(w, "\nWhat each step cost the deployment (from its action to its verification; a step that only waits counts its whole wait, and a first step that found the state reached by the deployment itself, such as an election under way when the run started, counts from the run's start to then; skipped steps cost nothing):\n\n")
	fmt.Fprintf(w, "| step | intrinsic |\n|---|---:|\n")
	seen := map[string]bool{}
	for _, t := range p.Tasks {
		if seen[t.Step] {
			continue
		}
		seen[t.Step] = true
		fmt.Fprintf(w, "| `%s` | %s |\n", t.Step, secs(p.StepCost[t.Step]))
	}
}
