package report

import (
	"time"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/runbooks"
	"github.com/sitectl/sitectl/runbooks/journal"
)

type jsonTask struct {
	Task       string        `json:"task"`
	Step       string        `json:"step"`
	Host       string        `json:"host,omitempty"`
	Service    string        `json:"service,omitempty"`
	Outcome    string        `json:"outcome"`
	Ended      bool          `json:"ended"`
	StartNS    time.Duration `json:"start_ns"` // from the run's start
	DurationNS time.Duration `json:"duration_ns"`
	Attempts   int           `json:"attempts"`
	Polls      int           `json:"polls"`
	Critical   bool          `json:"critical"`
}

// writeJSON prints the report's numbers (`sitectl report RUN -o json`).
func writeJSON(f *cmdutil.Factory, r journal.Run, plan *runbooks.Plan, why string) error {
	m := buildModel(r, plan, why)
	t := journal.Timings(r)
	p := runbooks.CriticalPath(r, plan)
	crit := criticalTasks(p)
	tasks := []jsonTask{}
	for _, tt := range t.Tasks {
		tasks = append(tasks, jsonTask{tt.Task, tt.Step, tt.Host, tt.Service, string(tt.Outcome), tt.Ended, tt.Offset, tt.Duration, tt.Attempts, tt.Polls, crit[tt.Task]})
	}
	markers := []map[string]any{}
	for _, mk := range m.Markers {
		markers = append(markers, map[string]any{"name": mk.Name, "at_ns": mk.At})
	}
	steps := map[string]time.Duration{}
	for k, v := range p.StepCost {
		steps[k] = v
	}
	path := map[string]any{"steps": p.Path, "critical_ns": p.Critical, "span_ns": p.Span, "before_first_step_ns": p.Before, "after_last_step_ns": p.After, "no_steps": p.NoSteps, "step_cost_ns": steps}
	if why != "" {
		path["not_computed"] = why
	}
	doc := map[string]any{
		"run": r.ID(), "run_info": r.Info, "outcome": m.Outcome, "interrupted": r.Interrupted(),
		"started": t.Start, "duration_ns": t.Total, "tasks": tasks, "markers": markers, "critical_path": path,
		"verdict_before": m.VerdictBefore, "verdict_after": m.VerdictAfter, "evidence_before": nonNil(m.Before), "evidence_after": nonNil(m.After),
		"warnings": nonNil(m.Warnings), "journal": r.Path,
	}
	if t.HasRTO {
		doc["rto_ns"], doc["rto_task"] = t.RTO, t.RTOTask
	}
	return cmdutil.WriteJSON(f.IO.Out, "report", doc)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
