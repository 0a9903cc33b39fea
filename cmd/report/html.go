package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/sitectl/sitectl/runbooks"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
)

// marker is a moment of the run drawn across the timeline.
type marker struct {
	Name string // run-start, election, first-service-up, verdict, rto
	At   time.Duration
	Text string
}

// bar is one task on the timeline.
type bar struct {
	Task, Step, Lane, Label string
	Start, Dur              time.Duration
	Outcome                 event.Outcome
	Ended, Critical         bool
}

// htmlModel is everything the HTML report shows, computed from the
// journal (and the plan, for sites and the critical path).
type htmlModel struct {
	ID, Title     string
	Info          [][2]string
	Outcome       string
	OutcomeClass  string
	Counts        string
	EndMessage    string
	Hint          string
	RTO           string
	Before, After []string // evidence: sites, invariant and verdict, before and after the steps
	VerdictBefore string
	VerdictAfter  string
	Warnings      []string
	Bars          []bar
	Markers       []marker
	Span          time.Duration
	Steps         []stepRow
	Time          []timeRow
	PathNote      string
	Failures      []failure
	SVG           template.HTML
}

type stepRow struct {
	Step     string
	Cost     string
	Critical bool
}

type timeRow struct{ Part, Time string }

type failure struct {
	Task, Outcome string
	Lines         []string
}

// criticalTasks are, for each step on the critical path, its slowest task
// (the one whose cost is the step's).
func criticalTasks(p runbooks.PathReport) map[string]bool {
	on := map[string]bool{}
	for _, s := range p.Path {
		on[s] = true
	}
	best := map[string]runbooks.TaskTime{}
	for _, t := range p.Tasks {
		if on[t.Step] && t.Intrinsic > 0 && t.Intrinsic >= best[t.Step].Intrinsic {
			best[t.Step] = t
		}
	}
	out := map[string]bool{}
	for _, t := range best {
		out[t.Task] = true
	}
	return out
}

// buildModel computes the HTML report's model, one section after the
// other: the header, the outcome, the evidence, the timeline's bars and
// markers, the per-step cost and the failures.
func buildModel(r journal.Run, plan *runbooks.Plan, why string) htmlModel {
	t := journal.Timings(r)
	p := runbooks.CriticalPath(r, plan)
	m := htmlModel{ID: r.ID(), Span: t.Total}
	if m.ID == "" {
		m.ID = "(unknown run)"
	}
	m.addInfo(r, t)
	m.addOutcome(r, t)
	m.addEvidence(r) // after addOutcome: it compares the end message with the counts
	m.addBars(t, p, plan)
	m.addMarkers(r, t)
	m.addSteps(p, why)
	m.addFailures(r, t)
	m.SVG = template.HTML(timelineSVG(m))
	return m
}

// addInfo sets the title and the header's key/value lines.
func (m *htmlModel) addInfo(r journal.Run, t journal.RunTimings) {
	m.Title = "sitectl run " + m.ID
	if in := r.Info; in != nil {
		m.Title = fmt.Sprintf("sitectl %s --site %s — run %s", in.Runbook, in.Site, m.ID)
		add := func(k, v string) {
			if v != "" {
				m.Info = append(m.Info, [2]string{k, v})
			}
		}
		add("Runbook", in.Runbook+" ("+in.RunbookDigest+")")
		add("Site", in.Site)
		add("Deployment", in.Deployment)
		add("Inventory", in.Inventory)
		add("Who", in.User+"@"+in.Hostname)
		add("Mode", in.Mode)
		add("Resumed from", in.ResumeOf)
		add("Command", strings.Join(in.Args, " "))
		add("Reason", in.Reason)
		add("Version", in.Version)
	}
	m.Info = append(m.Info, [2]string{"Started", stamp(t.Start)})
	if t.Ended {
		m.Info = append(m.Info, [2]string{"Ended", stamp(t.End)})
	} else {
		m.Info = append(m.Info, [2]string{"Ended", "never (no run.end record: killed, crashed or still running)"})
	}
	m.Info = append(m.Info, [2]string{"Duration", secs(t.Total)}, [2]string{"Journal", r.Path})
}

// addOutcome sets the run's outcome, the tasks' counts by outcome and the
// RTO.
func (m *htmlModel) addOutcome(r journal.Run, t journal.RunTimings) {
	m.Outcome = string(r.Outcome)
	if r.Interrupted() {
		m.Outcome = "interrupted"
	}
	switch r.Outcome {
	case event.OK, event.Skipped:
		m.OutcomeClass = "good"
	case event.Unknown, event.Cancelled:
		m.OutcomeClass = "warn"
	default:
		m.OutcomeClass = "bad"
	}
	counts := map[event.Outcome]int{}
	for _, tt := range t.Tasks {
		counts[tt.Outcome]++
	}
	var parts []string
	for _, o := range []event.Outcome{event.OK, event.Skipped, event.Failed, event.Unknown, event.Cancelled, event.Blocked, event.Refused, event.Planned, ""} {
		if n := counts[o]; n > 0 {
			name := string(o)
			if o == "" {
				name = "did not end"
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, name))
		}
	}
	m.Counts = fmt.Sprintf("%d tasks", len(t.Tasks))
	if len(parts) > 0 {
		m.Counts += ": " + strings.Join(parts, ", ")
	}
	if t.HasRTO {
		m.RTO = fmt.Sprintf("%s, from the run's start to the last successful verification (%s)", secs(t.RTO), t.RTOTask)
	} else {
		m.RTO = "not measured: no task ended ok"
	}
}

// addEvidence sets the evidence before and after, the verdicts, the
// warnings and the end message.
func (m *htmlModel) addEvidence(r journal.Run) {
	var firstStep time.Time
	for _, e := range r.Events {
		if e.Kind == event.StepStart && firstStep.IsZero() {
			firstStep = e.Time
		}
	}
	for _, e := range r.Events {
		msg := e.Message
		switch {
		case e.Kind == event.RunEnd:
			m.EndMessage, m.Hint = msg, e.Hint
			if strings.TrimSuffix(msg, ".") == m.Counts { // not the same count twice
				m.EndMessage = ""
			}
		case e.Kind == event.Verdict && event.PhaseOf(e) == event.ActionBefore:
			m.VerdictBefore = strings.TrimPrefix(msg, "before: ")
		case e.Kind == event.Verdict && event.PhaseOf(e) == event.ActionAfter:
			m.VerdictAfter = strings.TrimPrefix(msg, "after: ")
			if e.Expected != "" {
				m.VerdictAfter += fmt.Sprintf(" (expected: %s; %s)", e.Expected, e.Outcome)
			}
		case e.Kind == event.Verdict:
			if firstStep.IsZero() || e.Time.Before(firstStep) {
				m.VerdictBefore = msg
			} else {
				m.VerdictAfter = msg
			}
		case (e.Kind == event.Message || e.Kind == event.Invariant) && event.PhaseOf(e) == event.ActionBefore:
			m.Before = append(m.Before, kindLabel(e)+strings.TrimPrefix(msg, "before: "))
		case (e.Kind == event.Message || e.Kind == event.Invariant) && event.PhaseOf(e) == event.ActionAfter:
			m.After = append(m.After, kindLabel(e)+strings.TrimPrefix(msg, "after: "))
		case e.Kind == event.Message && event.PhaseOf(e) != event.ActionNothing:
			w := strings.TrimPrefix(msg, "warning: ")
			if e.Task != "" {
				w = e.Task + ": " + w
			}
			m.Warnings = append(m.Warnings, w)
		}
	}
}

// addBars adds the timeline's bars, one per task, in lanes by site and
// host.
func (m *htmlModel) addBars(t journal.RunTimings, p runbooks.PathReport, plan *runbooks.Plan) {
	siteOf := map[string]string{}
	if plan != nil {
		for _, tk := range plan.Tasks() {
			siteOf[tk.ID] = tk.Site
		}
	}
	crit := criticalTasks(p)
	for _, tt := range t.Tasks {
		lane := tt.Host
		if lane == "" {
			lane = "deployment"
		}
		if s := siteOf[tt.Task]; s != "" {
			lane = "site " + s + " · " + lane
		}
		label := tt.Step
		if tt.Service != "" {
			label += " · " + tt.Service
		}
		m.Bars = append(m.Bars, bar{Task: tt.Task, Step: tt.Step, Lane: lane, Label: label, Start: tt.Offset, Dur: tt.Duration, Outcome: tt.Outcome, Ended: tt.Ended, Critical: crit[tt.Task]})
	}
	sort.SliceStable(m.Bars, func(i, j int) bool { return m.Bars[i].Lane < m.Bars[j].Lane })
}

// addMarkers adds the timeline's markers: the run's start, the election,
// the first service up, the verdict and the RTO.
func (m *htmlModel) addMarkers(r journal.Run, t journal.RunTimings) {
	at := func(x time.Time) time.Duration { return min(max(x.Sub(t.Start), 0), t.Total) }
	m.Markers = append(m.Markers, marker{"run-start", 0, "run start"})
	var election, firstUp, verdict time.Time
	for _, e := range r.Events {
		switch {
		case e.Kind == event.StepVerify && e.Outcome == event.OK && !e.Reached.IsZero() && election.IsZero():
			election = e.Reached
		case e.Kind == event.StepEnd && e.Outcome == event.OK && e.Action == "start" && firstUp.IsZero():
			firstUp = e.Time
		case e.Kind == event.Verdict:
			verdict = e.Time
		}
	}
	if !election.IsZero() {
		m.Markers = append(m.Markers, marker{"election", at(election), "election " + secs(at(election))})
	}
	if !firstUp.IsZero() {
		m.Markers = append(m.Markers, marker{"first-service-up", at(firstUp), "first service up " + secs(at(firstUp))})
	}
	if !verdict.IsZero() {
		m.Markers = append(m.Markers, marker{"verdict", at(verdict), "verdict " + secs(at(verdict))})
	}
	if t.HasRTO {
		m.Markers = append(m.Markers, marker{"rto", at(t.RTOAt), "RTO " + secs(t.RTO)})
	}
}

// addSteps adds the per-step cost, where the time went and the note on
// the critical path.
func (m *htmlModel) addSteps(p runbooks.PathReport, why string) {
	onPath := map[string]bool{}
	for _, s := range p.Path {
		onPath[s] = true
	}
	seen := map[string]bool{}
	for _, tt := range p.Tasks {
		if !seen[tt.Step] {
			seen[tt.Step] = true
			m.Steps = append(m.Steps, stepRow{tt.Step, secs(p.StepCost[tt.Step]), onPath[tt.Step]})
		}
	}
	for _, row := range timeRows(p, why) {
		m.Time = append(m.Time, timeRow{row[0], row[1]})
	}
	if why != "" {
		m.PathNote = "The critical path is not computed: " + why + "."
	} else if len(p.Path) > 0 {
		m.PathNote = "Critical path: " + strings.Join(p.Path, " → ") + "."
	}
}

// addFailures adds, for each task whose last end was failed, unknown or
// cancelled, what was expected and observed and how to inspect it.
func (m *htmlModel) addFailures(r journal.Run, t journal.RunTimings) {
	final := map[string]event.Event{}
	for _, e := range r.Events {
		if e.Kind == event.StepEnd && e.Task != "" {
			final[e.Task] = e
		}
	}
	for _, tt := range t.Tasks {
		e, ok := final[tt.Task]
		if !ok || (e.Outcome != event.Failed && e.Outcome != event.Unknown && e.Outcome != event.Cancelled) {
			continue
		}
		f := failure{Task: tt.Task, Outcome: string(e.Outcome)}
		for _, kv := range [][2]string{{"expected", e.Expected}, {"observed", e.Observed}, {"message", e.Message}, {"stderr", strings.TrimSpace(e.Stderr)}, {"inspect", e.Hint}} {
			if kv[1] != "" {
				f.Lines = append(f.Lines, kv[0]+": "+kv[1])
			}
		}
		m.Failures = append(m.Failures, f)
	}
}

func kindLabel(e event.Event) string {
	if e.Kind == event.Invariant {
		return "invariant: "
	}
	return ""
}

// timeRows is the "where the time went" table; shared by the Markdown and
// HTML reports.
func timeRows(p runbooks.PathReport, why string) [][2]string {
	if p.Span <= 0 {
		return nil
	}
	rows := [][2]string{{"run (start to end in the journal)", secs(p.Span)}}
	if p.NoSteps {
		return append(rows, [2]string{"no step started: all of it was preflight (observation of both sites, confirmation, lock) and the verdict", secs(p.Span)})
	}
	rows = append(rows,
		[2]string{"before the first step (preflight observation of both sites, confirmation, lock)", secs(p.Before)},
		[2]string{"after the last step (invariant and verdict, every layer observed again)", secs(p.After)})
	if why != "" {
		return rows
	}
	rows = append(rows, [2]string{"critical path: " + strings.Join(p.Path, " → "), secs(p.Critical)})
	rest := secs(p.Overhead())
	if p.Critical > 0 {
		rest += fmt.Sprintf(" (%.0f %% of the critical path)", 100*p.Overhead().Seconds()/p.Critical.Seconds())
	}
	return append(rows, [2]string{"the rest (observing, polling, waiting between steps, timeouts of what did not answer)", rest})
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

func stamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000 UTC")
}

// Geometry of the timeline.
const (
	svgLabelW = 300 // left column: task labels
	svgPlotW  = 840
	svgRowH   = 22
	svgLaneH  = 24
	svgTop    = 64 // marker labels and the axis
)

func esc(s string) string { return template.HTMLEscapeString(s) }

// timelineSVG draws every task as a bar (class "bar", one per task) on a
// time axis, grouped in lanes by site and host, with the markers as
// vertical lines and the critical path outlined.
func timelineSVG(m htmlModel) string {
	span := m.Span
	for _, b := range m.Bars {
		span = max(span, b.Start+b.Dur)
	}
	if span <= 0 {
		span = time.Second
	}
	x := func(d time.Duration) float64 { return svgLabelW + float64(svgPlotW)*d.Seconds()/span.Seconds() }
	var body strings.Builder
	y := svgTop
	lane := ""
	for _, b := range m.Bars {
		if b.Lane != lane {
			lane = b.Lane
			fmt.Fprintf(&body, `<text class="lane" x="4" y="%d">%s</text><line class="lanesep" x1="0" x2="%d" y1="%d" y2="%d"/>`+"\n", y+16, esc(lane), svgLabelW+svgPlotW+20, y+svgLaneH-2, y+svgLaneH-2)
			y += svgLaneH
		}
		cls := "bar o-" + string(b.Outcome)
		if b.Outcome == "" {
			cls = "bar o-none"
		}
		if b.Critical {
			cls += " critical"
		}
		w := math.Max(x(b.Start+b.Dur)-x(b.Start), 2)
		fmt.Fprintf(&body, `<text class="label" x="14" y="%d">%s</text>`, y+15, esc(b.Label))
		fmt.Fprintf(&body, `<rect class="%s" data-task="%s" x="%.1f" y="%d" width="%.1f" height="%d" rx="2"><title>%s: %s, %s from +%s</title></rect>`,
			cls, esc(b.Task), x(b.Start), y+3, w, svgRowH-6, esc(b.Task), esc(outcomeText(b)), secs(b.Dur), secs(b.Start))
		fmt.Fprintf(&body, `<text class="dur" x="%.1f" y="%d">%s</text>`+"\n", x(b.Start)+w+4, y+15, secs(b.Dur))
		y += svgRowH
	}
	height := y + 30
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" id="timeline" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="timeline of every task">`+"\n",
		svgLabelW+svgPlotW+80, height, svgLabelW+svgPlotW+80, height)
	fmt.Fprintf(&s, `<rect class="bg" x="0" y="0" width="%d" height="%d"/>`+"\n", svgLabelW+svgPlotW+80, height)
	// axis with about 8 ticks at a round step
	step := niceStep(span / 8)
	for d := time.Duration(0); d <= span; d += step {
		fmt.Fprintf(&s, `<line class="tick" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/><text class="axis" x="%.1f" y="%d">%s</text>`+"\n",
			x(d), x(d), svgTop-6, height-24, x(d), height-8, axisLabel(d))
	}
	s.WriteString(body.String())
	for i, mk := range m.Markers {
		// labels right of their line, or left of it in the last quarter
		lx, anchor := x(mk.At)+3, "start"
		if x(mk.At) > svgLabelW+0.75*svgPlotW {
			lx, anchor = x(mk.At)-3, "end"
		}
		fmt.Fprintf(&s, `<line class="marker m-%s" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/><text class="mlabel m-%s" x="%.1f" y="%d" text-anchor="%s">%s</text>`+"\n",
			mk.Name, x(mk.At), x(mk.At), 8+12*(i%4), height-24, mk.Name, lx, 16+12*(i%4), anchor, esc(mk.Text))
	}
	s.WriteString("</svg>")
	return s.String()
}

func outcomeText(b bar) string {
	if !b.Ended {
		return "did not end"
	}
	return string(b.Outcome)
}

func niceStep(d time.Duration) time.Duration {
	for _, s := range []time.Duration{100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute} {
		if d <= s {
			return s
		}
	}
	return 30 * time.Minute
}

func axisLabel(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%gs", d.Seconds())
	}
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:20px;margin:0 0 12px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #eef1f5;text-align:left;vertical-align:top}
th{background:#f5f7fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pill{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600;color:#fff}
.good{background:#1f8a4c}.warn{background:#b7791f}.bad{background:#c53030}
.crit{font-weight:600;color:#6b46c1}
code,pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}pre{background:#f5f7fa;padding:8px;overflow:auto}
svg text{font:11px system-ui,sans-serif;fill:#2d3748}svg .lane{font-weight:600;fill:#1a202c}
svg .bg{fill:#fff}svg .lanesep{stroke:#e2e8f0}svg .tick{stroke:#edf2f7}svg .axis{fill:#718096}
svg .bar{stroke:none}svg .o-ok{fill:#38a169}svg .o-skipped{fill:#a0aec0}svg .o-failed{fill:#e53e3e}svg .o-unknown{fill:#dd6b20}
svg .o-cancelled{fill:#d69e2e}svg .o-blocked{fill:#cbd5e0}svg .o-planned{fill:#4299e1}svg .o-none{fill:#ecc94b}
svg .critical{stroke:#6b46c1;stroke-width:2.5}svg .dur{fill:#718096;font-size:10px}
svg .marker{stroke-width:1.5;stroke-dasharray:4 3}svg .mlabel{font-weight:600}
svg .m-run-start{stroke:#2d3748;fill:#2d3748}svg .m-election{stroke:#805ad5;fill:#805ad5}svg .m-first-service-up{stroke:#2f855a;fill:#2f855a}
svg .m-verdict{stroke:#2b6cb0;fill:#2b6cb0}svg .m-rto{stroke:#c53030;fill:#c53030}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin-right:4px}
</style></head><body>
<h1>{{.Title}}</h1>
<p><span class="pill {{.OutcomeClass}}" id="outcome">{{.Outcome}}</span> {{.Counts}}{{if .EndMessage}} — {{.EndMessage}}{{end}}</p>
{{if .Hint}}<p>Next: <code>{{.Hint}}</code></p>{{end}}
<p><b>Measured RTO:</b> <span id="rto">{{.RTO}}</span></p>
<table>{{range .Info}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>{{end}}</table>

<h2>Verdict</h2>
<table>
<tr><th>before</th><td>{{if .VerdictBefore}}{{.VerdictBefore}}{{else}}(not observed){{end}}</td></tr>
<tr><th>after</th><td>{{if .VerdictAfter}}{{.VerdictAfter}}{{else}}(not observed: no step ran, or the run did not end){{end}}</td></tr>
</table>

<h2>Timeline</h2>
<p class="legend"><span><i class="sw" style="background:#38a169"></i>ok</span><span><i class="sw" style="background:#a0aec0"></i>skipped</span><span><i class="sw" style="background:#e53e3e"></i>failed</span><span><i class="sw" style="background:#dd6b20"></i>unknown</span><span><i class="sw" style="background:#ecc94b"></i>did not end</span><span><i class="sw" style="background:#fff;outline:2.5px solid #6b46c1"></i>critical path</span></p>
{{.SVG}}
<p>{{.PathNote}}</p>

<h2>Where the time went</h2>
{{if .Time}}<table>{{range .Time}}<tr><td>{{.Part}}</td><td class="num">{{.Time}}</td></tr>{{end}}</table>{{else}}<p>The run has no duration to split.</p>{{end}}

<h2>Step durations</h2>
{{if .Steps}}<table><tr><th>step</th><th>cost to the deployment</th></tr>{{range .Steps}}<tr><td{{if .Critical}} class="crit"{{end}}>{{.Step}}{{if .Critical}} (critical path){{end}}</td><td class="num">{{.Cost}}</td></tr>{{end}}</table>
<p>From a task's action to its verification; a step that only waits counts its whole wait; skipped steps cost nothing.</p>{{else}}<p>No step ran.</p>{{end}}

<h2>Evidence</h2>
<h3>Before the steps</h3>
{{if .Before}}<ul>{{range .Before}}<li>{{.}}</li>{{end}}</ul>{{else}}<p>(none recorded)</p>{{end}}
<h3>After the steps</h3>
{{if .After}}<ul>{{range .After}}<li>{{.}}</li>{{end}}</ul>{{else}}<p>(none recorded)</p>{{end}}

<h2>Warnings</h2>
{{if .Warnings}}<ul id="warnings">{{range .Warnings}}<li>{{.}}</li>{{end}}</ul>{{else}}<p>None.</p>{{end}}

<h2>Failures</h2>
{{if .Failures}}{{range .Failures}}<h3><code>{{.Task}}</code>: {{.Outcome}}</h3><pre>{{range .Lines}}{{.}}
{{end}}</pre>{{end}}{{else}}<p>None.</p>{{end}}
<p style="color:#718096">Written by <code>sitectl report {{.ID}} --format html</code>. Self-contained: no script, no font or image is fetched.</p>
</body></html>
`))

// writeHTML writes the HTML report of r.
func writeHTML(w io.Writer, r journal.Run, plan *runbooks.Plan, why string) error {
	return page.Execute(w, buildModel(r, plan, why))
}
