package journal

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/sitectl/sitectl/runbooks/event"
)

// RunTimings are the numbers of a run, as used by the report.
type RunTimings struct {
	Start time.Time     // run start
	End   time.Time     // run.end, or the last record when the run never ended
	Ended bool          // a run.end record exists
	Total time.Duration // End - Start
	// RTO is the measured recovery time: from run start to the last
	// successful verification (the last step.end with Outcome OK). HasRTO is
	// false when no task ended OK.
	RTO     time.Duration
	HasRTO  bool
	RTOTask string    // task of that step.end
	RTOAt   time.Time // time of that step.end
	Tasks   []TaskTiming
}

// TaskTiming is one task's span, from its first step.start to its last
// step.end.
type TaskTiming struct {
	Task     string
	Step     string
	Host     string
	Service  string
	Start    time.Time
	Offset   time.Duration // Start - run start
	Duration time.Duration // step.end's Duration, else end - start; so far if it never ended
	Outcome  event.Outcome // of the last step.end; "" if it never ended
	Ended    bool
	Attempts int // highest Attempt seen
	Polls    int // step.verify records
}

// Timings computes the run's numbers. Tasks are sorted by start time, then
// task id.
func Timings(r Run) RunTimings {
	t := RunTimings{Start: r.Started, End: r.Ended, Ended: !r.Interrupted()}
	if !t.Ended || t.End.IsZero() {
		t.End = r.Last
	}
	if !t.Start.IsZero() && t.End.After(t.Start) {
		t.Total = t.End.Sub(t.Start)
	}
	ends := t.collectTasks(r)
	if t.HasRTO {
		t.RTO = t.RTOAt.Sub(t.Start)
	}
	t.spanTasks(r, ends)
	sort.SliceStable(t.Tasks, func(i, j int) bool {
		a, b := t.Tasks[i], t.Tasks[j]
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		return a.Task < b.Task
	})
	return t
}

// collectTasks adds a TaskTiming per task in the order the tasks first
// appear, with its step, host, service, attempts, polls and outcome, and
// the last successful step.end (the RTO's end). It returns the last
// step.end per task.
func (t *RunTimings) collectTasks(r Run) map[string]event.Event {
	idx := map[string]int{}
	task := func(e event.Event) *TaskTiming {
		i, ok := idx[e.Task]
		if !ok {
			i = len(t.Tasks)
			idx[e.Task] = i
			t.Tasks = append(t.Tasks, TaskTiming{Task: e.Task})
		}
		tt := &t.Tasks[i]
		if tt.Step == "" {
			tt.Step = e.Step
		}
		if tt.Host == "" {
			tt.Host = e.Host
		}
		if tt.Service == "" {
			tt.Service = e.Service
		}
		tt.Attempts = max(tt.Attempts, e.Attempt)
		return tt
	}
	ends := map[string]event.Event{}
	for _, e := range r.Events {
		if e.Kind == event.StepEnd && e.Outcome == event.OK && !e.Time.IsZero() {
			t.HasRTO, t.RTOTask, t.RTOAt = true, e.Task, e.Time
		}
		if e.Task == "" {
			continue
		}
		switch e.Kind {
		case event.StepStart:
			if tt := task(e); tt.Start.IsZero() {
				tt.Start = e.Time
			}
		case event.StepVerify:
			task(e).Polls++
		case event.StepEnd:
			tt := task(e)
			tt.Outcome, tt.Ended = e.Outcome, true
			ends[e.Task] = e
		case event.StepObserve, event.StepAct:
			task(e)
		}
	}
	return ends
}

// spanTasks sets each task's start, duration and offset from the run's
// start: the step.end's own duration when it has one, else the time from
// the first step.start to it, else (the task never ended) to the journal's
// last record.
func (t *RunTimings) spanTasks(r Run, ends map[string]event.Event) {
	for i := range t.Tasks {
		tt := &t.Tasks[i]
		end, ok := ends[tt.Task]
		switch {
		case ok && tt.Start.IsZero():
			tt.Start = end.Time.Add(-end.Duration)
			tt.Duration = end.Duration
		case ok && end.Duration > 0:
			tt.Duration = end.Duration
		case ok:
			tt.Duration = end.Time.Sub(tt.Start)
		case !tt.Start.IsZero() && r.Last.After(tt.Start):
			tt.Duration = r.Last.Sub(tt.Start)
		}
		if !tt.Start.IsZero() && !t.Start.IsZero() {
			tt.Offset = tt.Start.Sub(t.Start)
		}
	}
}

// Markdown writes the run report: header, outcome, measured RTO, timeline,
// task durations and failures (with stderr and hints). Verification polls
// and observations are counted in the task table rather than listed in the
// timeline.
func Markdown(w io.Writer, r Run) error {
	ew := &errWriter{w: w}
	t := Timings(r)
	id := r.ID()
	if id == "" {
		id = "(unknown run)"
	}
	ew.printf("# sitectl run %s\n\n", id)
	writeHeader(ew, r, t)
	writeOutcome(ew, r, t)
	writeRTO(ew, t)
	writeTimeline(ew, r, t)
	writeTaskDurations(ew, t)
	writeFailures(ew, r, t)
	return ew.err
}

// writeHeader writes the table of who ran what, where and when.
func writeHeader(ew *errWriter, r Run, t RunTimings) {
	ew.printf("| | |\n|---|---|\n")
	row := func(k, v string) {
		if v != "" {
			ew.printf("| %s | %s |\n", k, v)
		}
	}
	if in := r.Info; in != nil {
		rb := code(in.Runbook)
		if in.RunbookDigest != "" {
			rb += " (" + code(in.RunbookDigest) + ")"
		}
		row("Runbook", rb)
		row("Site", cell(in.Site))
		row("Deployment", cell(in.Deployment))
		inv := cell(in.Inventory)
		if in.InventoryDigest != "" {
			inv += " (" + code(in.InventoryDigest) + ")"
		}
		row("Inventory", inv)
		row("Who", cell(in.User))
		where := cell(in.Hostname)
		if in.PID > 0 {
			where += fmt.Sprintf(" (pid %d)", in.PID)
		}
		row("Where", where)
		row("Mode", cell(in.Mode))
		if in.ResumeOf != "" {
			row("Resumed from", code(in.ResumeOf))
		}
		if len(in.Args) > 0 {
			row("Command", code(strings.Join(in.Args, " ")))
		}
		row("Reason", cell(in.Reason))
		row("Version", cell(in.Version))
	} else {
		row("Run info", "missing: the journal has no run.start record")
	}
	row("Started", stamp(t.Start))
	if t.Ended {
		row("Ended", stamp(t.End))
	} else {
		row("Ended", "never (no run.end record)")
	}
	row("Duration", dur(t.Total))
	row("Journal", code(r.Path))
}

// writeOutcome writes the run's outcome, the tasks' counts, the end
// message and the layers' verdicts: who serves traffic, before and after.
func writeOutcome(ew *errWriter, r Run, t RunTimings) {
	ew.printf("\n## Outcome\n\n")
	counts := map[event.Outcome]int{}
	for _, tt := range t.Tasks {
		counts[tt.Outcome]++
	}
	if r.Interrupted() {
		ew.printf("**interrupted**: the run has no run.end record; it was killed or crashed (or is still running). " +
			"Tasks without an outcome below were in flight.\n")
	} else {
		ew.printf("**%s**\n", r.Outcome)
	}
	countLine := ""
	if len(t.Tasks) > 0 {
		countLine = fmt.Sprintf("%d tasks: %s", len(t.Tasks), countList(counts))
		ew.printf("\n%s.\n", countLine)
	}
	for _, e := range r.Events {
		if e.Kind == event.RunEnd && (e.Message != "" || e.Hint != "") {
			if e.Message != "" && strings.TrimSuffix(e.Message, ".") != countLine { // not the same count twice
				ew.printf("\n%s\n", cell(e.Message))
			}
			if e.Hint != "" {
				ew.printf("\nHint: %s\n", code(e.Hint))
			}
		}
	}
	// Who serves traffic, before and after: the layers' verdict.
	var verdicts []event.Event
	for _, e := range r.Events {
		if e.Kind == event.Verdict {
			verdicts = append(verdicts, e)
		}
	}
	if len(verdicts) > 0 {
		ew.printf("\n## Verdict\n\n")
		for _, e := range verdicts {
			line := cell(e.Message)
			if e.Expected != "" {
				line += fmt.Sprintf(" (expected: %s; %s)", cell(e.Expected), e.Outcome)
			}
			ew.printf("- %s\n", line)
		}
	}
	if r.Truncated {
		ew.printf("\n> The journal's last line was torn (the writer was killed mid-write) and is left out.\n")
	}
}

// writeRTO writes the measured recovery time, or why there is none.
func writeRTO(ew *errWriter, t RunTimings) {
	ew.printf("\n## Recovery time (RTO)\n\n")
	if t.HasRTO {
		ew.printf("Measured RTO: **%s** (%.1f s), from run start (%s) to the last successful verification: %s at %s.\n",
			dur(t.RTO), t.RTO.Seconds(), stamp(t.Start), code(t.RTOTask), stamp(t.RTOAt))
	} else {
		ew.printf("No RTO measured: no verification succeeded (no task ended ok).\n")
	}
}

// writeTimeline writes one row per record, leaving out verification polls
// and observations (counted in the task table instead).
func writeTimeline(ew *errWriter, r Run, t RunTimings) {
	ew.printf("\n## Timeline\n\n")
	ew.printf("| time | task | event | outcome | duration |\n|---:|---|---|---|---:|\n")
	for _, e := range r.Events {
		if e.Kind == event.StepVerify || e.Kind == event.StepObserve {
			continue
		}
		off := "—"
		if !e.Time.IsZero() && !t.Start.IsZero() {
			off = "+" + dur(e.Time.Sub(t.Start))
		}
		ev := string(e.Kind)
		detail := e.Action
		if e.Kind == event.StepAct && e.ExitCode != nil {
			detail = strings.TrimSpace(detail + fmt.Sprintf(" exit %d", *e.ExitCode))
		}
		if detail == "" {
			detail = firstLine(e.Message, 80)
		}
		if detail != "" {
			ev += ": " + detail
		}
		d := ""
		if e.Duration > 0 {
			d = dur(e.Duration)
		}
		ew.printf("| %s | %s | %s | %s | %s |\n", off, cell(e.Task), cell(ev), cell(string(e.Outcome)), d)
	}
}

// writeTaskDurations writes one row per task: start, duration, outcome,
// attempts and polls.
func writeTaskDurations(ew *errWriter, t RunTimings) {
	ew.printf("\n## Task durations\n\n")
	if len(t.Tasks) == 0 {
		ew.printf("No tasks ran.\n")
	} else {
		ew.printf("| task | start | duration | outcome | attempts | polls |\n|---|---:|---:|---|---:|---:|\n")
		for _, tt := range t.Tasks {
			out, d := string(tt.Outcome), dur(tt.Duration)
			if !tt.Ended {
				out, d = "(did not end)", "≥ "+d
			}
			ew.printf("| %s | +%s | %s | %s | %d | %d |\n", code(tt.Task), dur(tt.Offset), d, cell(out), tt.Attempts, tt.Polls)
		}
	}
}

// writeFailures writes each failed, unknown or cancelled task and each
// failed invariant with its details, then the blocked tasks.
func writeFailures(ew *errWriter, r Run, t RunTimings) {
	ew.printf("\n## Failures\n")
	nfail := 0
	var blocked []string
	final := map[string]event.Event{} // last step.end per task
	for _, e := range r.Events {
		if e.Kind == event.StepEnd && e.Task != "" {
			final[e.Task] = e
		}
	}
	for _, tt := range t.Tasks {
		end, ok := final[tt.Task]
		if !ok {
			continue
		}
		switch end.Outcome {
		case event.Failed, event.Unknown, event.Cancelled:
			nfail++
			writeFailure(ew, r, tt, end)
		case event.Blocked:
			blocked = append(blocked, code(tt.Task))
		}
	}
	for _, e := range r.Events {
		if e.Kind == event.Invariant && (e.Outcome == event.Failed || e.Outcome == event.Unknown) {
			nfail++
			ew.printf("\n### Invariant %s: %s\n\n", code(firstNonEmpty(e.Step, e.Action, e.Task, "(unnamed)")), e.Outcome)
			detailList(ew, e)
		}
	}
	if len(blocked) > 0 {
		ew.printf("\nBlocked (not run because a dependency did not succeed): %s.\n", strings.Join(blocked, ", "))
	}
	if nfail == 0 {
		ew.printf("\nNone.\n")
	}
}

func writeFailure(ew *errWriter, r Run, tt TaskTiming, end event.Event) {
	ew.printf("\n### %s: %s\n\n", code(tt.Task), end.Outcome)
	// Complete the step.end with what the task's last action recorded.
	var act event.Event
	hint := end.Hint
	for _, e := range r.Events {
		if e.Task != tt.Task {
			continue
		}
		if e.Kind == event.StepAct {
			act = e
		}
		if hint == "" && e.Hint != "" {
			hint = e.Hint
		}
	}
	e := end
	e.Host = firstNonEmpty(e.Host, act.Host, tt.Host)
	e.Service = firstNonEmpty(e.Service, act.Service, tt.Service)
	e.Action = firstNonEmpty(e.Action, act.Action)
	if e.Command == "" {
		e.Command = act.Command
	}
	if e.ExitCode == nil {
		e.ExitCode = act.ExitCode
	}
	if e.Stderr == "" {
		e.Stderr = act.Stderr
	}
	if e.Stdout == "" && e.Stderr == "" {
		e.Stdout = act.Stdout
	}
	e.Hint = hint
	detailList(ew, e)
}

func detailList(ew *errWriter, e event.Event) {
	item := func(k, v string) {
		if v != "" {
			ew.printf("- %s: %s\n", k, v)
		}
	}
	item("Host", cell(e.Host))
	item("Service", cell(e.Service))
	item("Action", cell(e.Action))
	item("Command", code(e.Command))
	if e.ExitCode != nil {
		item("Exit code", fmt.Sprint(*e.ExitCode))
	}
	item("Expected", cell(e.Expected))
	item("Observed", cell(e.Observed))
	item("Message", cell(e.Message))
	if e.Attempt > 0 {
		item("Attempt", fmt.Sprint(e.Attempt))
	}
	item("Hint", code(e.Hint))
	for _, out := range []struct{ name, text string }{{"stderr", e.Stderr}, {"stdout", e.Stdout}} {
		if strings.TrimSpace(out.text) != "" {
			f := fence(out.text)
			ew.printf("\n%s:\n\n%stext\n%s\n%s\n", out.name, f, strings.TrimRight(out.text, "\n"), f)
		}
	}
}

type errWriter struct {
	w   io.Writer
	err error
}

func (ew *errWriter) printf(format string, a ...any) {
	if ew.err == nil {
		_, ew.err = fmt.Fprintf(ew.w, format, a...)
	}
}

// cell makes s safe inside a Markdown table cell or list item.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\r", "")
	s = strings.ReplaceAll(s, "\n", " ⏎ ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// code renders s as an inline code span that survives backticks and pipes.
func code(s string) string {
	if s == "" {
		return ""
	}
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r", ""), "\n", " ⏎ ")
	ticks := strings.Repeat("`", longestRun(s, '`')+1)
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	return strings.ReplaceAll(ticks+pad+s+pad+ticks, "|", `\|`)
}

// fence returns a code fence longer than any backtick run in s.
func fence(s string) string { return strings.Repeat("`", max(3, longestRun(s, '`')+1)) }

func longestRun(s string, c byte) int {
	best, n := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}

func firstLine(s string, limit int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if r := []rune(s); len(r) > limit {
		s = string(r[:limit]) + "…"
	}
	return s
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

// dur formats a duration to the millisecond under a minute, else to the second.
func dur(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func countList(m map[event.Outcome]int) string {
	order := []event.Outcome{event.OK, event.Skipped, event.Failed, event.Unknown, event.Cancelled, event.Blocked, event.Planned}
	var parts []string
	for _, o := range order {
		if m[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[o], o))
		}
	}
	if m[""] > 0 {
		parts = append(parts, fmt.Sprintf("%d in flight", m[""]))
	}
	known := map[event.Outcome]bool{"": true}
	for _, o := range order {
		known[o] = true
	}
	var other []string
	for o, n := range m {
		if !known[o] {
			other = append(other, fmt.Sprintf("%d %s", n, o))
		}
	}
	sort.Strings(other)
	return strings.Join(append(parts, other...), ", ")
}
