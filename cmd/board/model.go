package board

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sitectl/sitectl/checks/services"

	tea "github.com/sitectl/sitectl/third_party/bubbletea"

	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/runbooks/event"
)

// RunFunc runs a runbook against a site and streams its events into sink.
type RunFunc func(ctx context.Context, runbook, site string, sink event.Sink) error

// Deps is everything the board needs from the outside world. Tests inject
// fakes; boardRun wires the inventory, the SSH pool and the engine.
type Deps struct {
	Deployment string
	Sites      []string // site names, in inventory order (A, B)
	Roles      map[string]string
	// Observe takes one snapshot of every layer; it must honour ctx.
	Observe func(ctx context.Context) checks.Snapshot
	// Run executes a runbook; Plan runs it in plan (dry-run) mode.
	Run  RunFunc
	Plan RunFunc
	// Journal returns the last run's journal as lines (the `j` key).
	Journal func() ([]string, error)
	// Lock returns who holds the run lock (here or on a site's lock host),
	// "" when nobody does; it must honour ctx.
	Lock     func(ctx context.Context) string
	Now      func() time.Time
	Interval time.Duration // between the starts of two refreshes (default 2s)
	// Timeout is the deadline of one refresh (default 9/10 of Interval,
	// the rest leaves room to draw, and never under MinTimeout: a short
	// interval must not turn a busy operator machine into hosts that do
	// not answer). What has not answered by then is shown
	// as not answering (and what was seen of it before with its age), so a
	// dead host or site shows within two intervals, never hidden behind a
	// refresh still waiting for it.
	Timeout time.Duration
	// Redact masks secrets in every line the board draws (the one
	// redactor of every output, cmdutil.Factory.Redact); nil draws as is.
	Redact func(string) string
	// Grace is how long past Timeout a refresh may take to hand in its
	// partial answer before the whole refresh counts as failed (default 1s).
	Grace time.Duration
}

// MinTimeout is the shortest default deadline of one refresh
// (checks.MinRefreshTimeout, shared with the exporter).
const MinTimeout = checks.MinRefreshTimeout

// StaleAfter is the number of failed refreshes after which shown values are
// marked stale.
const StaleAfter = 2

type mode int

const (
	modeMain mode = iota
	modeConfirm
	modeHelp
	modeJournal
)

// action is a runbook the board can start.
type action struct {
	Key     string
	Runbook string
	Plan    bool
}

var actions = map[string]action{
	"t": {Key: "t", Runbook: "takeover"},
	"r": {Key: "r", Runbook: "renounce"},
	"s": {Key: "s", Runbook: "switchover"},
	"p": {Key: "p", Runbook: "takeover", Plan: true},
}

func (a action) label() string {
	if a.Plan {
		return "plan " + a.Runbook
	}
	return a.Runbook
}

// hostEntry is the last good observation of a host and when it was made.
type hostEntry struct {
	Host services.HostStatus
	At   time.Time
}

// Messages.
type (
	tickMsg    struct{}
	refreshMsg struct {
		snap checks.Snapshot
		err  error
		at   time.Time
		took time.Duration
	}
	runEventMsg struct{ e event.Event }
	runDoneMsg  struct {
		err error
		at  time.Time
	}
	journalMsg struct {
		lines []string
		err   error
	}
	lockMsg struct{ holder string }
)

// runPanel is the state of the current (or last) run.
type runPanel struct {
	Action  action
	Site    string
	Started time.Time
	Ended   time.Time
	Done    bool
	Err     error
	Outcome event.Outcome
	Lines   []runLine
	ch      chan tea.Msg
	cancel  context.CancelFunc
	done    chan struct{} // closed when the run function has returned
}

type runLine struct {
	Task     string
	Outcome  event.Outcome
	Duration time.Duration
	Message  string
}

// Model is the board. It is a value type; Update returns the new value.
type Model struct {
	deps   Deps
	ctx    context.Context
	width  int
	height int
	keys   keyMap
	st     styles

	selected int
	mode     mode

	// refresh state
	snap       checks.Snapshot
	haveSnap   bool
	lastOK     time.Time
	lastTook   time.Duration
	fails      int
	lastErr    error
	inFlight   bool
	hosts      map[string]hostEntry // site/host -> last reachable observation
	since      checks.Since         // site/host/service -> state and since when
	lockHolder string

	// confirmation
	pending action
	typed   string
	notice  string

	run     *runPanel
	journal []string
}

// New builds a board. ctx bounds every refresh and run.
func New(ctx context.Context, d Deps) Model {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Interval <= 0 {
		d.Interval = 2 * time.Second
	}
	timeout, grace := checks.RefreshDefaults(d.Interval)
	if d.Timeout <= 0 {
		d.Timeout = timeout
	}
	if d.Grace <= 0 {
		d.Grace = grace
	}
	if d.Redact == nil {
		d.Redact = func(s string) string { return s }
	}
	return Model{deps: d, ctx: ctx, width: 80, height: 24, keys: defaultKeys(), st: newStyles(), hosts: map[string]hostEntry{}, since: checks.Since{}, inFlight: true}
}

// Init starts the first refresh.
func (m Model) Init() tea.Cmd {
	return tea.Batch(m.refreshCmd(), m.lockCmd())
}

func (m Model) refreshCmd() tea.Cmd {
	r := checks.Refresher{Observe: m.deps.Observe, Timeout: m.deps.Timeout, Grace: m.deps.Grace, Now: m.deps.Now}
	parent := m.ctx
	return func() tea.Msg {
		res := r.Once(parent)
		return refreshMsg{snap: res.Snap, err: res.Err, at: res.At, took: res.Took}
	}
}

func (m Model) lockCmd() tea.Cmd {
	if m.deps.Lock == nil {
		return nil
	}
	lock, timeout, parent := m.deps.Lock, m.deps.Timeout, m.ctx
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(parent, timeout)
		defer cancel()
		return lockMsg{holder: lock(ctx)}
	}
}

// tickCmd schedules the next refresh one interval after the start of the
// last one (at once if that took longer), so a slow refresh does not push
// every later one back.
func (m Model) tickCmd(took time.Duration) tea.Cmd {
	wait := checks.NextRefresh(m.deps.Interval, took)
	return tea.Tick(wait, func(time.Time) tea.Msg { return tickMsg{} })
}

func waitRun(ch chan tea.Msg) tea.Cmd {
	return func() tea.Msg {
		msg, ok := <-ch
		if !ok {
			return nil
		}
		return msg
	}
}

// Update handles one message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return m, nil
	case tickMsg:
		if m.inFlight {
			return m, m.tickCmd(0)
		}
		m.inFlight = true
		return m, tea.Batch(m.refreshCmd(), m.lockCmd())
	case refreshMsg:
		m.applyRefresh(msg)
		return m, m.tickCmd(msg.took)
	case lockMsg:
		m.lockHolder = msg.holder
		return m, nil
	case runEventMsg:
		if m.run != nil {
			m.run.add(msg.e)
			return m, waitRun(m.run.ch)
		}
		return m, nil
	case runDoneMsg:
		if m.run != nil {
			m.run.Done, m.run.Err, m.run.Ended = true, msg.err, msg.at
			if m.run.Outcome == "" {
				if msg.err != nil {
					m.run.Outcome = event.Failed
				} else {
					m.run.Outcome = event.OK
				}
			}
		}
		if m.inFlight {
			return m, nil
		}
		m.inFlight = true
		return m, tea.Batch(m.refreshCmd(), m.lockCmd())
	case journalMsg:
		m.mode = modeJournal
		if msg.err != nil {
			m.journal = []string{"no journal: " + msg.err.Error()}
		} else {
			m.journal = msg.lines
		}
		return m, nil
	case tea.KeyMsg:
		return m.handleKey(msg)
	}
	return m, nil
}

func (m *Model) applyRefresh(msg refreshMsg) {
	m.inFlight = false
	if msg.err != nil {
		m.fails++
		m.lastErr = msg.err
		return
	}
	m.fails, m.lastErr = 0, nil
	m.snap, m.haveSnap, m.lastOK, m.lastTook = msg.snap, true, msg.at, msg.took
	if msg.snap.Took > 0 {
		m.lastTook = time.Duration(msg.snap.Took)
	}
	for _, s := range msg.snap.Sites {
		for _, h := range s.Hosts {
			if !h.Reachable {
				continue
			}
			m.hosts[s.Site+"/"+h.Host] = hostEntry{Host: h, At: msg.at}
		}
	}
	m.since.Update(msg.snap, msg.at)
}

// Stale reports whether the shown values are older than StaleAfter failed
// refreshes.
func (m Model) Stale() bool { return m.fails >= StaleAfter || !m.haveSnap }

func (m Model) handleKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	key := k.String()
	if key == "ctrl+c" {
		return m.quit()
	}
	switch m.mode {
	case modeConfirm:
		switch k.Type {
		case tea.KeyEsc:
			m.mode, m.typed, m.notice = modeMain, "", "cancelled: nothing was run"
			return m, nil
		case tea.KeyEnter:
			site := m.site()
			if strings.TrimSpace(m.typed) != site {
				m.mode = modeMain
				m.notice = fmt.Sprintf("not confirmed: typed %q, expected %q; nothing was run", strings.TrimSpace(m.typed), site)
				m.typed = ""
				return m, nil
			}
			m.mode, m.typed, m.notice = modeMain, "", ""
			return m.startRun(m.pending, site)
		case tea.KeyBackspace:
			if r := []rune(m.typed); len(r) > 0 {
				m.typed = string(r[:len(r)-1])
			}
			return m, nil
		case tea.KeyRunes, tea.KeySpace:
			if len(m.typed) < 64 {
				m.typed += string(k.Runes)
			}
			return m, nil
		}
		return m, nil
	case modeHelp, modeJournal:
		if key == "q" || key == "esc" || key == "?" || key == "j" || key == "enter" {
			m.mode = modeMain
		}
		return m, nil
	}
	switch key {
	case "q":
		return m.quit()
	case "up", "shift+tab", "k", "left":
		if len(m.deps.Sites) > 0 {
			m.selected = (m.selected + len(m.deps.Sites) - 1) % len(m.deps.Sites)
		}
	case "down", "tab", "right":
		if len(m.deps.Sites) > 0 {
			m.selected = (m.selected + 1) % len(m.deps.Sites)
		}
	case "?":
		m.mode = modeHelp
	case "j":
		if m.deps.Journal == nil {
			return m, nil
		}
		jf := m.deps.Journal
		return m, func() tea.Msg { l, err := jf(); return journalMsg{lines: l, err: err} }
	case "esc":
		m.notice = ""
	case "t", "r", "s", "p":
		if m.run != nil && !m.run.Done {
			m.notice = "a run is in progress; wait for it to end"
			return m, nil
		}
		if m.site() == "" {
			return m, nil
		}
		m.pending, m.typed, m.notice, m.mode = actions[key], "", "", modeConfirm
	}
	return m, nil
}

func (m Model) quit() (tea.Model, tea.Cmd) {
	if m.run != nil && m.run.cancel != nil && !m.run.Done {
		m.run.cancel()
	}
	return m, tea.Quit
}

func (m Model) site() string {
	if m.selected < 0 || m.selected >= len(m.deps.Sites) {
		return ""
	}
	return m.deps.Sites[m.selected]
}

func (m Model) startRun(a action, site string) (tea.Model, tea.Cmd) {
	fn := m.deps.Run
	if a.Plan {
		fn = m.deps.Plan
	}
	if fn == nil {
		m.notice = a.label() + " is not available"
		return m, nil
	}
	ctx, cancel := context.WithCancel(m.ctx)
	ch := make(chan tea.Msg, 64)
	rp := &runPanel{Action: a, Site: site, Started: m.deps.Now(), ch: ch, cancel: cancel, done: make(chan struct{})}
	m.run = rp
	now := m.deps.Now
	sink := event.SinkFunc(func(e event.Event) {
		select {
		case ch <- runEventMsg{e: e}:
		case <-ctx.Done():
		}
	})
	go func() {
		defer close(rp.done)
		err := fn(ctx, a.Runbook, site, sink)
		select {
		case ch <- runDoneMsg{err: err, at: now()}:
		case <-ctx.Done(): // the board quit and reads no more
		}
		cancel()
		close(ch)
	}()
	return m, waitRun(ch)
}

// add folds one event into the panel: one line per task, updated in place.
func (r *runPanel) add(e event.Event) {
	switch e.Kind {
	case event.StepStart:
		r.Lines = append(r.Lines, runLine{Task: taskName(e), Outcome: "running"})
	case event.StepEnd:
		name := taskName(e)
		for i := len(r.Lines) - 1; i >= 0; i-- {
			if r.Lines[i].Task == name && r.Lines[i].Outcome == "running" {
				r.Lines[i] = runLine{Task: name, Outcome: e.Outcome, Duration: e.Duration, Message: e.Message}
				return
			}
		}
		r.Lines = append(r.Lines, runLine{Task: name, Outcome: e.Outcome, Duration: e.Duration, Message: e.Message})
	case event.RunEnd:
		r.Outcome = e.Outcome
		if e.Message != "" {
			r.Lines = append(r.Lines, runLine{Task: "result", Outcome: e.Outcome, Duration: e.Duration, Message: e.Message})
		}
	case event.Message, event.Invariant:
		if e.Message != "" {
			r.Lines = append(r.Lines, runLine{Task: "note", Message: e.Message})
		}
	}
}

func taskName(e event.Event) string {
	if e.Task != "" {
		return e.Task
	}
	parts := []string{e.Step}
	if e.Host != "" {
		parts = append(parts, e.Host)
	}
	if e.Service != "" {
		parts = append(parts, e.Service)
	}
	return strings.Join(parts, "/")
}

// WaitRun waits up to d for a run the board started to return, so that a
// run cancelled by quitting can journal its end before the process exits.
// It reports whether no run is left in flight.
func (m Model) WaitRun(d time.Duration) bool {
	if m.run == nil || m.run.done == nil {
		return true
	}
	select {
	case <-m.run.done:
		return true
	case <-time.After(d):
		return false
	}
}

// redact masks secrets in a line of the screen (Deps.Redact).
func (m Model) redact(s string) string { return m.deps.Redact(s) }
