package board

import (
	"fmt"
	"strings"
	"time"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/runbooks/event"
)

// line is one rendered line: plain text (for width) and its style.
type line struct {
	text  string
	style *lipgloss.Style
}

// render fits l to width; redact masks secrets first, so that truncation
// can never leave part of a secret on screen.
func (l line) render(width int, redact func(string) string) string {
	t := ansi.Truncate(redact(l.text), width, "…")
	if w := ansi.StringWidth(t); w < width {
		t += strings.Repeat(" ", width-w)
	}
	if l.style == nil {
		return t
	}
	return l.style.Render(t)
}

func plain(s string) line                     { return line{text: s} }
func styled(s string, st lipgloss.Style) line { return line{text: s, style: &st} }

// View renders the whole screen, exactly width x height.
func (m Model) View() string {
	w, h := max(m.width, 20), max(m.height, 6)
	now := m.deps.Now()
	header := m.header(now)
	footer := []line{m.footer()}
	var bottom []line
	switch m.mode {
	case modeHelp:
		bottom = m.helpLines()
	case modeJournal:
		bottom = m.journalLines()
	case modeConfirm:
		bottom = m.confirmLines()
	default:
		bottom = m.bottomLines()
	}
	room := h - len(header) - len(footer)
	if maxBottom := room - 4; len(bottom) > maxBottom {
		bottom = clip(bottom, max(maxBottom, 1))
	}
	cols := m.columns(now, w, room-len(bottom))

	var b strings.Builder
	b.Grow(w * h * 2)
	b.WriteString(m.headerFirst(w))
	b.WriteByte('\n')
	n := 1
	for _, l := range header[1:] {
		b.WriteString(l.render(w, m.redact))
		b.WriteByte('\n')
		n++
	}
	for _, c := range cols {
		b.WriteString(c)
		b.WriteByte('\n')
		n++
	}
	for _, l := range bottom {
		b.WriteString(l.render(w, m.redact))
		b.WriteByte('\n')
		n++
	}
	blank := strings.Repeat(" ", w)
	for ; n < h-len(footer); n++ {
		b.WriteString(blank)
		b.WriteByte('\n')
	}
	for i, l := range footer {
		b.WriteString(l.render(w, m.redact))
		if i < len(footer)-1 {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// clip keeps the last n lines when a panel scrolls (runs, journals).
func clip(ls []line, n int) []line {
	if len(ls) <= n {
		return ls
	}
	if n <= 1 {
		return ls[len(ls)-n:]
	}
	out := []line{ls[0], plain(fmt.Sprintf("  … %d earlier lines", len(ls)-n+1))}
	return append(out, ls[len(ls)-n+2:]...)
}

func age(d time.Duration) string {
	if d < time.Second {
		return "0s"
	}
	return d.Round(time.Second).String()
}

func (m Model) verdictLabel() line {
	if !m.haveSnap {
		return styled("UNKNOWN (no observation yet)", m.st.Unknown)
	}
	if m.Stale() {
		return styled("UNKNOWN (stale)", m.st.Unknown)
	}
	v := m.snap.Verdict
	switch v.State {
	case checks.ServeOne:
		return styled("site "+v.Site+" serves", m.st.OK)
	case checks.ServeNone:
		return styled("none serves", m.st.Bad)
	case checks.ServeSplit:
		return styled("SPLIT", m.st.Bad)
	case checks.ServePartial:
		return styled("site "+v.Site+" serves PARTLY", m.st.Warn)
	}
	return styled("UNKNOWN", m.st.Unknown)
}

func (m Model) header(now time.Time) []line {
	hl := []line{plain("")} // replaced by headerFirst, which colours the verdict
	status := "lock: free"
	if m.lockHolder != "" {
		status = "lock: " + m.lockHolder
	}
	var st *lipgloss.Style
	if m.fails > 0 {
		status += fmt.Sprintf(" · refresh failed %d× (%v)", m.fails, m.lastErr)
		if m.haveSnap {
			status += fmt.Sprintf(", data %s old", age(now.Sub(m.lastOK)))
		}
		s := m.st.Warn
		st = &s
	}
	hl = append(hl, line{text: status, style: st}, plain(""))
	return hl
}

// headerFirst colours the verdict within the first line.
func (m Model) headerFirst(w int) string {
	v := m.verdictLabel()
	head := fmt.Sprintf("sitectl board · %s · ", m.deps.Deployment)
	rest := "  refreshing…"
	if m.haveSnap {
		rest = fmt.Sprintf("  refreshed %s (took %s)", m.lastOK.Format("15:04:05"), m.lastTook.Round(time.Millisecond))
	}
	full := head + v.text + rest
	if ansi.StringWidth(full) > w || v.style == nil {
		return line{text: full, style: nil}.render(w, m.redact)
	}
	pad := strings.Repeat(" ", w-ansi.StringWidth(full))
	return head + v.style.Render(v.text) + rest + pad
}

func (m Model) footer() line {
	if m.width < 100 {
		return styled("↑↓/tab site  t takeover  r renounce  s switch  p plan  j journal  ? help  q quit", m.st.Faint)
	}
	var parts []string
	for _, k := range m.keys.short() {
		parts = append(parts, k.Help().Key+" "+k.Help().Desc)
	}
	return styled(strings.Join(parts, " · "), m.st.Faint)
}

// columns renders the two site columns side by side, height lines.
func (m Model) columns(now time.Time, w, height int) []string {
	n := max(len(m.deps.Sites), 1)
	sep := " │ "
	colW := (w - (n-1)*len([]rune(sep))) / n
	cols := make([][]line, n)
	for i, site := range m.deps.Sites {
		cols[i] = m.siteLines(now, i, site, colW)
	}
	witness := m.witnessLines()
	colH := height - len(witness)
	if colH < 2 {
		witness, colH = nil, height
	}
	tallest := 0
	for _, c := range cols {
		tallest = max(tallest, len(c))
	}
	colH = min(colH, tallest)
	out := make([]string, 0, height)
	for r := 0; r < colH; r++ {
		var b strings.Builder
		for i := range cols {
			if i > 0 {
				b.WriteString(sep)
			}
			c := cols[i]
			switch {
			case r == colH-1 && len(c) > colH:
				b.WriteString(plain(fmt.Sprintf("  … %d more lines (widen or heighten the terminal)", len(c)-colH+1)).render(colW, m.redact))
			case r < len(c):
				b.WriteString(c[r].render(colW, m.redact))
			default:
				b.WriteString(strings.Repeat(" ", colW))
			}
		}
		rowW := ansi.StringWidth(b.String())
		if rowW < w {
			b.WriteString(strings.Repeat(" ", w-rowW))
		}
		out = append(out, b.String())
	}
	for _, l := range witness {
		out = append(out, l.render(w, m.redact))
	}
	return out
}

func (m Model) siteStatus(site string) (services.SiteStatus, bool) {
	for _, s := range m.snap.Sites {
		if s.Site == site {
			return s, true
		}
	}
	return services.SiteStatus{}, false
}

// nameWidth is the width of a column's names: the longest, at least 6, at
// most a third of the column (longer names are cut, see fit).
func nameWidth(colW int, names []string) int {
	w := 6
	for _, n := range names {
		w = max(w, ansi.StringWidth(n))
	}
	return min(w, max(colW/3, 6))
}

// fit pads or cuts s to exactly w cells.
func fit(s string, w int) string {
	n := ansi.StringWidth(s)
	if n > w {
		s = ansi.Truncate(s, w, "…")
		n = ansi.StringWidth(s)
	}
	return s + strings.Repeat(" ", max(w-n, 0))
}

// siteLines is the column of one site: its header, then each host with
// its services, then the site's rows of the other layers.
func (m Model) siteLines(now time.Time, idx int, site string, colW int) []line {
	nw := m.siteNameWidth(site, colW)
	ls := m.siteHeader(idx, site)
	if !m.haveSnap {
		return append(ls, styled("  waiting for the first observation…", m.st.Faint))
	}
	ss, _ := m.siteStatus(site)
	stale := m.Stale()
	ls = append(ls, m.hostLines(now, site, ss, stale, nw)...)
	ls = append(ls, m.layerLines(now, site, stale, nw)...)
	return ls
}

// siteNameWidth is the width of the site's name column: one for the whole
// site, so that states line up.
func (m Model) siteNameWidth(site string, colW int) int {
	var names []string
	if ss, ok := m.siteStatus(site); ok {
		for _, h := range ss.Hosts {
			for _, svc := range h.Services {
				names = append(names, svc.Service)
			}
		}
	}
	for _, l := range m.snap.Verdict.Layers {
		for _, r := range l.Rows {
			if r.Site == site && l.Layer != checks.LayerServices {
				names = append(names, r.Name)
			}
		}
	}
	return nameWidth(colW, names)
}

// siteHeader is the site's title (marked when selected) and role, its core
// and reporting state, and, for a site that does not answer here, its loss
// verdict and the evidence behind it.
func (m Model) siteHeader(idx int, site string) []line {
	var ls []line
	marker := "  "
	if idx == m.selected {
		marker = "▶ "
	}
	title := marker + "Site " + site
	if r := m.deps.Roles[site]; r != "" {
		title += " (" + r + ")"
	}
	ss, ok := m.siteStatus(site)
	if idx == m.selected {
		ls = append(ls, styled(title, m.st.Selected))
	} else {
		ls = append(ls, styled(title, m.st.Title))
	}
	if ok {
		st := m.st.Faint
		if m.Stale() {
			st = m.st.Stale
		}
		ls = append(ls, styled(fmt.Sprintf("  core %s · reporting %s", ss.Core, ss.Reporting), st))
		// a site that does not answer here: its loss verdict and the
		// evidence behind it (docs/checks.md "Site loss")
		if ss.Loss != nil && ss.Loss.State != checks.SiteReachable {
			lst := m.st.Bad
			if ss.Loss.State == checks.SiteDown {
				lst = m.st.Title
			}
			ls = append(ls, styled("  "+string(ss.Loss.State)+fmt.Sprintf(" (%d/%d observers confirm)", ss.Loss.Confirmed, ss.Loss.Quorum), lst))
			for _, e := range ss.Loss.Evidence {
				if e.Independent {
					ls = append(ls, styled("    "+oneLine(e.String()), m.st.Faint))
				}
			}
		}
	}
	return ls
}

// hostLines is, for each host of the site, its line (unreachable: since
// when, with the services last seen; stale: how old) and its services.
func (m Model) hostLines(now time.Time, site string, ss services.SiteStatus, stale bool, nw int) []line {
	var ls []line
	for _, h := range ss.Hosts {
		svcs := h.Services
		hostLine := "  " + h.Host
		var hostStyle = m.st.Title
		oldAt := m.lastOK
		old := stale
		if !h.Reachable {
			e, seen := m.hosts[site+"/"+h.Host]
			hostStyle = m.st.Bad
			if seen {
				svcs, oldAt, old = e.Host.Services, e.At, true
				hostLine += fmt.Sprintf("  %s, last seen %s ago", h.Reach.HostLabel(), age(now.Sub(e.At)))
			} else {
				hostLine += "  " + h.Reach.HostLabel() + ": " + oneLine(h.Error)
				svcs = nil
			}
		} else if stale {
			hostLine += fmt.Sprintf("  (%s old)", age(now.Sub(oldAt)))
			hostStyle = m.st.Stale
		}
		ls = append(ls, styled(hostLine, hostStyle))
		for _, svc := range svcs {
			ls = append(ls, m.serviceLine(svc, m.sinceLabel(now, site, h.Host, svc), old, now.Sub(oldAt), nw))
		}
	}
	return ls
}

// layerLines is the site's rows of the other layers, under each layer's
// name.
func (m Model) layerLines(now time.Time, site string, stale bool, nw int) []line {
	var ls []line
	for _, l := range m.snap.Verdict.Layers {
		if l.Layer == checks.LayerServices {
			continue
		}
		var rows []checks.Row
		for _, r := range l.Rows {
			if r.Site == site {
				rows = append(rows, r)
			}
		}
		if len(rows) == 0 {
			continue
		}
		ls = append(ls, styled("  "+l.Layer, m.st.Title))
		for _, r := range rows {
			ls = append(ls, m.rowLine(r, stale, now.Sub(m.lastOK), nw))
		}
	}
	return ls
}

// sinceLabel says for how long the service has been in its state, as far
// as the board has seen: "3m" since a change it saw, "≥3m" when it was
// already so at the board's first look.
func (m Model) sinceLabel(now time.Time, site, host string, svc services.ServiceStatus) string {
	e, ok := m.since[checks.SinceKey(site, host, svc.Service)]
	if !ok || e.State != svc.State {
		return ""
	}
	d := compact(now.Sub(e.At))
	if e.Initial {
		return "≥" + d
	}
	return d
}

// compact: 0s, 45s, 3m, 1h05m, 2d3h.
func compact(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

func (m Model) serviceLine(svc services.ServiceStatus, since string, old bool, oldFor time.Duration, nw int) line {
	state := string(svc.State)
	detail := svc.Error
	st := m.st.Faint
	switch {
	case svc.State == services.Running && svc.Probe != nil && !svc.Probe.OK:
		st, state, detail = m.st.Bad, "running", "probe failing: "+svc.Probe.Detail
	case svc.State == services.Running:
		st = m.st.OK
		if svc.Probe != nil {
			detail = svc.Probe.Detail
		}
	case svc.State == services.Unknown:
		st, state = m.st.Unknown, "UNKNOWN"
	}
	text := fmt.Sprintf("    %s %-9s %-5s %s", fit(svc.Service, nw), state, since, oneLine(detail))
	if old {
		// never green when the value could not be refreshed
		return styled(fmt.Sprintf("    %s %-9s (%s old) %s", fit(svc.Service, nw), state, age(oldFor), oneLine(detail)), m.st.Stale)
	}
	return styled(text, st)
}

func (m Model) rowLine(r checks.Row, old bool, oldFor time.Duration, nw int) line {
	text := fmt.Sprintf("    %s %-9s %s", fit(r.Name, nw), r.State, oneLine(r.Short()))
	if old {
		return styled(fmt.Sprintf("    %s %-9s (%s old) %s", fit(r.Name, nw), r.State, age(oldFor), oneLine(r.Short())), m.st.Stale)
	}
	return plain(text)
}

func (m Model) isSite(s string) bool {
	for _, x := range m.deps.Sites {
		if x == s {
			return true
		}
	}
	return false
}

// witnessLines are the rows of sites that are not A or B (arbiters,
// witnesses), shown below the columns.
func (m Model) witnessLines() []line {
	var ls []line
	for _, l := range m.snap.Verdict.Layers {
		if l.Layer == checks.LayerServices {
			continue
		}
		for _, r := range l.Rows {
			if m.isSite(r.Site) {
				continue
			}
			name := r.Site
			if name == "" {
				name = "witness"
			}
			ls = append(ls, plain(fmt.Sprintf("  %-8s %-9s %-18s %-8s %s", name, l.Layer, r.Name, r.State, oneLine(r.Short()))))
		}
	}
	if len(ls) > 0 {
		ls = append([]line{styled("  Witness", m.st.Title)}, ls...)
	}
	return ls
}

// bottomLines: the reasons and fixes when unhealthy, then the run panel and
// any notice.
func (m Model) bottomLines() []line {
	var ls []line
	v := m.snap.Verdict
	if m.haveSnap && m.Stale() {
		ls = append(ls, styled(fmt.Sprintf("Why: the last %d refreshes failed (%v); nothing shown is current", m.fails, m.lastErr), m.st.Bad))
	} else if m.haveSnap && v.State != checks.ServeOne {
		ls = append(ls, styled("Why: "+v.Summary, m.st.Bad))
		fixes := append([]string(nil), v.Fixes...)
		for _, l := range v.Layers {
			who := l.State
			if l.State == checks.ServeOne {
				who = "site " + l.Site
			}
			ls = append(ls, plain(fmt.Sprintf("  %-9s %-8s %s", l.Layer, who, oneLine(l.Detail))))
			for _, n := range l.Notes {
				ls = append(ls, styled("      "+oneLine(n), m.st.Warn))
			}
			if l.Fix != "" && l.State == checks.ServeOne {
				fixes = append(fixes, l.Layer+": "+l.Fix)
			}
		}
		if len(fixes) > 0 {
			ls = append(ls, styled("Fix:", m.st.Title))
			for _, f := range fixes {
				ls = append(ls, plain("  "+f))
			}
		}
	}
	if m.run != nil {
		ls = append(ls, m.runLines()...)
	}
	if m.notice != "" {
		ls = append(ls, styled(m.notice, m.st.Warn))
	}
	return ls
}

func (m Model) runLines() []line {
	r := m.run
	state := "running…"
	if r.Done {
		state = fmt.Sprintf("%s in %s", outcomeLabel(r.Outcome), r.Ended.Sub(r.Started).Round(time.Millisecond))
		if r.Err != nil {
			state += ": " + oneLine(r.Err.Error())
		}
	}
	ls := []line{styled(fmt.Sprintf("Run: %s --site %s · %s", r.Action.label(), r.Site, state), m.st.Title)}
	for _, l := range r.Lines {
		d := ""
		if l.Duration > 0 {
			d = l.Duration.Round(time.Millisecond).String()
		}
		text := fmt.Sprintf("  %-9s %-8s %s %s", outcomeLabel(l.Outcome), d, l.Task, oneLine(l.Message))
		ls = append(ls, styled(strings.TrimRight(text, " "), m.outcomeStyle(l.Outcome)))
	}
	return ls
}

func outcomeLabel(o event.Outcome) string {
	if o == "" {
		return "-"
	}
	return strings.ToUpper(string(o))
}

func (m Model) outcomeStyle(o event.Outcome) lipgloss.Style {
	switch o {
	case event.OK, event.Skipped:
		return m.st.OK
	case event.Failed, event.Refused, event.Blocked:
		return m.st.Bad
	case event.Unknown, event.Cancelled:
		return m.st.Unknown
	}
	return lipgloss.NewStyle()
}

func (m Model) confirmLines() []line {
	a, site := m.pending, m.site()
	verb := "run"
	if a.Plan {
		verb = "plan (read-only)"
	}
	return []line{
		styled(fmt.Sprintf("Confirm: %s %s --site %s", verb, a.Runbook, site), m.st.Bad),
		plain(fmt.Sprintf("Type the site name (%s) and press enter; esc cancels.", site)),
		plain("> " + m.typed + "_"),
	}
}

func (m Model) helpLines() []line {
	ls := []line{styled("Help (esc closes)", m.st.Title)}
	for _, b := range []key.Binding{m.keys.Select, m.keys.Takeover, m.keys.Renounce, m.keys.Switchover, m.keys.Plan, m.keys.Journal, m.keys.Help, m.keys.Quit} {
		ls = append(ls, plain(fmt.Sprintf("  %-8s %s", b.Help().Key, b.Help().Desc)))
	}
	ls = append(ls,
		plain("  Every action asks you to type the site name. Values that could not be"),
		plain("  refreshed show their age and are never shown as healthy."),
		plain(fmt.Sprintf("  Refresh every %s, each within %s.", m.deps.Interval, m.deps.Timeout)))
	return ls
}

func (m Model) journalLines() []line {
	ls := []line{styled("Last run's journal (esc closes)", m.st.Title)}
	for _, l := range m.journal {
		ls = append(ls, plain("  "+l))
	}
	return ls
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", " ")
}
