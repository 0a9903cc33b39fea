// Package report implements `sitectl report <run>`: a Markdown report of a
// run with its timeline, per-step durations and measured RTO.
package report

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	journalCmd "github.com/sitectl/sitectl/cmd/journal"
	"github.com/sitectl/sitectl/runbooks"
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
		Short: "Write a Markdown report of a run: timeline, durations, measured RTO, where the time went",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Run = args[0]
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return reportRun(c.Context(), opts)
		},
	}
}

func reportRun(_ context.Context, opts *Options) error {
	f := opts.F
	r, err := journalCmd.Load(f, opts.Run)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := journal.Markdown(&b, r); err != nil {
		return err
	}
	plan, why := planOf(f, r)
	writeTime(&b, runbooks.CriticalPath(r, plan), why)
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
	p, err := journalCmd.Plan(f, r.Info)
	if err != nil {
		return nil, err.Error()
	}
	return p, ""
}

// writeTime appends "Where the time went": what the deployment itself made
// the run wait for (the critical path) against everything else.
func writeTime(w io.Writer, p runbooks.PathReport, why string) {
	s := func(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }
	fmt.Fprintf(w, "\n## Where the time went\n\n")
	if p.Span <= 0 {
		fmt.Fprintf(w, "The run has no duration to split.\n")
		return
	}
	fmt.Fprintf(w, "| part | time |\n|---|---:|\n")
	fmt.Fprintf(w, "| run (start to end in the journal) | %s |\n", s(p.Span))
	fmt.Fprintf(w, "| before the first step (preflight observation of both sites, confirmation, lock) | %s |\n", s(p.Before))
	fmt.Fprintf(w, "| after the last step (invariant and verdict, every layer observed again) | %s |\n", s(p.After))
	if why != "" {
		fmt.Fprintf(w, "\nThe critical path is not computed: %s.\n", why)
	} else {
		fmt.Fprintf(w, "| critical path: %s | %s |\n", strings.Join(p.Path, " → "), s(p.Critical))
		fmt.Fprintf(w, "| the rest (observing, polling, waiting between steps, timeouts of what did not answer) | %s (%.0f %% of the critical path) |\n",
			s(p.Overhead()), 100*p.Overhead().Seconds()/max(p.Critical.Seconds(), 1e-9))
	}
	fmt.Fprintf(w, "\nWhat each step cost the deployment (from its action to its verification; a step that only waits counts its whole wait, and a first step that found the state reached by the deployment itself, such as an election under way when the run started, counts from the run's start to then; skipped steps cost nothing):\n\n")
	fmt.Fprintf(w, "| step | intrinsic |\n|---|---:|\n")
	seen := map[string]bool{}
	for _, t := range p.Tasks {
		if seen[t.Step] {
			continue
		}
		seen[t.Step] = true
		fmt.Fprintf(w, "| `%s` | %s |\n", t.Step, s(p.StepCost[t.Step]))
	}
}
