package board

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/charmbracelet/x/ansi"
	tea "github.com/sitectl/sitectl/third_party/bubbletea"

	"github.com/sitectl/sitectl/checks"
	"github.com/sitectl/sitectl/runbooks/event"
	"github.com/sitectl/sitectl/runbooks/journal"
)

func update(t *testing.T, m Model, msg tea.Msg) (Model, tea.Cmd) {
	t.Helper()
	nm, cmd := m.Update(msg)
	return nm.(Model), cmd
}

func press(s string) tea.KeyMsg {
	switch s {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "backspace":
		return tea.KeyMsg{Type: tea.KeyBackspace}
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

func typeText(t *testing.T, m Model, s string) Model {
	for _, r := range s {
		m, _ = update(t, m, press(string(r)))
	}
	return m
}

func refreshed(t *testing.T, f *fakeDeps) Model {
	t.Helper()
	m := New(context.Background(), f.deps())
	m, _ = update(t, m, tea.WindowSizeMsg{Width: 120, Height: 40})
	m, cmd := update(t, m, refreshMsg{snap: f.snap, at: f.clock.now})
	if cmd == nil {
		t.Fatal("a refresh must schedule the next tick")
	}
	return m
}

func TestRefreshResult(t *testing.T) {
	f := newFake()
	m := New(context.Background(), f.deps())
	if !strings.Contains(m.View(), "UNKNOWN (no observation yet)") {
		t.Fatalf("before the first refresh the verdict must be unknown:\n%s", m.View())
	}
	m = refreshed(t, f)
	if m.Stale() || !m.haveSnap || m.inFlight {
		t.Fatalf("stale=%v have=%v inFlight=%v", m.Stale(), m.haveSnap, m.inFlight)
	}
	v := m.View()
	for _, want := range []string{"site A serves", "refreshed 08:00:00 (took 1.2s)", "mongo-a", "mongo-a             primary   prio 2, health 1, lag 0s", "amq-b/chat.requests", "up, top A@10 bridge", "chat/chat-a", "active, 12 sess", "mongo-arb", "HTTP 200 in 12ms", "chat                running   ≥0s", "lock: free"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "Why:") {
		t.Errorf("healthy verdict shows reasons:\n%s", v)
	}
}

func TestRefreshCmdRespectsDeadline(t *testing.T) {
	f := newFake()
	d := f.deps()
	d.Timeout, d.Grace = 20*time.Millisecond, 20*time.Millisecond
	d.Observe = func(ctx context.Context) checks.Snapshot { time.Sleep(time.Minute); return checks.Snapshot{} }
	m := New(context.Background(), d)
	start := time.Now()
	msg := m.refreshCmd()().(refreshMsg)
	if msg.err == nil || time.Since(start) > 30*time.Second { // the deadline ended it, not the observation
		t.Fatalf("slow refresh: err=%v after %s", msg.err, time.Since(start))
	}
}

// An observation that hands in a partial answer at its deadline (what did
// not answer marked so) is a refresh, not a failure: the board shows what
// did answer as current.
func TestRefreshKeepsPartialAnswer(t *testing.T) {
	f := newFake()
	d := f.deps()
	d.Timeout, d.Grace = 50*time.Millisecond, time.Second
	var deadline time.Time
	d.Observe = func(ctx context.Context) checks.Snapshot {
		deadline, _ = ctx.Deadline()
		<-ctx.Done()
		s := f.snap
		s.Sites[0].Hosts[0].Reachable = false
		s.Sites[0].Hosts[0].Error = "a-app1: no answer within 50ms"
		return s
	}
	m := New(context.Background(), d)
	start := time.Now()
	msg := m.refreshCmd()().(refreshMsg)
	if msg.err != nil || deadline.Sub(start) > 60*time.Millisecond {
		t.Fatalf("partial refresh: err=%v, deadline %s after start", msg.err, deadline.Sub(start))
	}
	m, _ = update(t, m, msg)
	if m.Stale() || m.fails != 0 {
		t.Fatalf("a partial answer counted as a failed refresh: fails=%d", m.fails)
	}
}

func TestStaleAfterTwoFailedRefreshes(t *testing.T) {
	f := newFake()
	m := refreshed(t, f)
	f.clock.now = t0.Add(4 * time.Second)
	m, _ = update(t, m, refreshMsg{err: errors.New("refresh did not finish within 10s"), at: f.clock.now})
	if m.Stale() {
		t.Fatal("one failure must not mark stale yet")
	}
	if !strings.Contains(m.View(), "refresh failed 1×") {
		t.Errorf("failure not shown:\n%s", m.View())
	}
	f.clock.now = t0.Add(8 * time.Second)
	m, _ = update(t, m, refreshMsg{err: errors.New("refresh did not finish within 10s"), at: f.clock.now})
	if !m.Stale() {
		t.Fatal("two failures must mark stale")
	}
	v := m.View()
	if strings.Contains(v, "site A serves") || !strings.Contains(v, "UNKNOWN (stale)") {
		t.Errorf("stale verdict still healthy:\n%s", v)
	}
	if !strings.Contains(v, "(8s old)") {
		t.Errorf("stale values do not show their age:\n%s", v)
	}
	// a good refresh clears it
	m, _ = update(t, m, refreshMsg{snap: f.snap, at: f.clock.now})
	if m.Stale() || m.fails != 0 {
		t.Fatal("a good refresh must clear staleness")
	}
}

func TestUnreachableHostKeepsAgedValues(t *testing.T) {
	f := newFake()
	m := refreshed(t, f)
	s := healthySnapshot()
	s.Sites[1].Hosts[0] = services.HostStatus{Site: "B", Host: "b-app1", Error: "dial tcp: i/o timeout", Reach: checks.SawDown}
	f.clock.now = t0.Add(6 * time.Second)
	m, _ = update(t, m, refreshMsg{snap: s, at: f.clock.now})
	v := m.View()
	if !strings.Contains(v, "UNREACHABLE, last seen 6s ago") || !strings.Contains(v, "(6s old)") {
		t.Errorf("unreachable host not aged:\n%s", v)
	}
}

func TestSelectionKeys(t *testing.T) {
	m := refreshed(t, newFake())
	if m.site() != "A" {
		t.Fatal("A is selected first")
	}
	for _, k := range []string{"down", "tab", "up"} {
		m, _ = update(t, m, press(k))
	}
	if m.site() != "B" {
		t.Fatalf("selected %s, want B", m.site())
	}
	if !strings.Contains(m.View(), "▶ Site B") {
		t.Error("selection not drawn")
	}
}

func TestQuitKeys(t *testing.T) {
	for _, k := range []string{"q", "ctrl+c"} {
		m := refreshed(t, newFake())
		_, cmd := update(t, m, press(k))
		if cmd == nil {
			t.Fatalf("%s: no command", k)
		}
		if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Fatalf("%s does not quit", k)
		}
	}
}

func TestHelpAndJournal(t *testing.T) {
	f := newFake()
	m := refreshed(t, f)
	m, _ = update(t, m, press("?"))
	if m.mode != modeHelp || !strings.Contains(m.View(), "Help (esc closes)") {
		t.Fatalf("help not shown:\n%s", m.View())
	}
	m, _ = update(t, m, press("esc"))
	m, cmd := update(t, m, press("j"))
	m, _ = update(t, m, cmd())
	if m.mode != modeJournal || !strings.Contains(m.View(), "run takeover --site A by alice") {
		t.Fatalf("journal not shown:\n%s", m.View())
	}
	m, _ = update(t, m, press("esc"))
	if m.mode != modeMain {
		t.Fatal("esc does not close the journal")
	}
}

// drain runs cmd and feeds its messages back until the run is done.
func drain(t *testing.T, m Model, cmd tea.Cmd) Model {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for cmd != nil && time.Now().Before(deadline) {
		msg := cmd()
		switch msg.(type) {
		case runEventMsg, runDoneMsg:
		default:
			return m
		}
		m, cmd = update(t, m, msg)
		if m.run != nil && m.run.Done {
			return m
		}
	}
	return m
}

func TestConfirmTypedRightRuns(t *testing.T) {
	f := newFake()
	m := refreshed(t, f)
	m, _ = update(t, m, press("tab"))
	m, _ = update(t, m, press("t"))
	if m.mode != modeConfirm || !strings.Contains(m.View(), "Type the site name (B)") {
		t.Fatalf("no confirmation:\n%s", m.View())
	}
	m = typeText(t, m, "BX")
	m, _ = update(t, m, press("backspace"))
	m, cmd := update(t, m, press("enter"))
	if m.run == nil || cmd == nil {
		t.Fatal("run not started")
	}
	m = drain(t, m, cmd)
	if got := f.ran(); len(got) != 1 || got[0] != "takeover B" {
		t.Fatalf("runs = %v", got)
	}
	if !m.run.Done || m.run.Outcome != event.OK {
		t.Fatalf("run done=%v outcome=%s", m.run.Done, m.run.Outcome)
	}
	if n := len(m.run.Lines); n != 4 {
		t.Fatalf("run lines = %d, want 3 tasks + result: %+v", n, m.run.Lines)
	}
	v := m.View()
	for _, want := range []string{"Run: takeover --site B · OK", "SKIPPED", "1.5s", "start-core/B-app1/mre", "4.5s"} {
		if !strings.Contains(v, want) {
			t.Errorf("run panel lacks %q:\n%s", want, v)
		}
	}
}

func TestConfirmTypedWrongRefuses(t *testing.T) {
	f := newFake()
	m := refreshed(t, f)
	m, _ = update(t, m, press("r"))
	m = typeText(t, m, "B")
	m, cmd := update(t, m, press("enter"))
	if cmd != nil || m.run != nil || len(f.ran()) != 0 {
		t.Fatal("a wrong site name must not run anything")
	}
	if !strings.Contains(m.View(), `not confirmed: typed "B", expected "A"`) {
		t.Errorf("refusal not shown:\n%s", m.View())
	}
	// esc cancels too
	m, _ = update(t, m, press("s"))
	m, _ = update(t, m, press("esc"))
	if m.mode != modeMain || m.run != nil {
		t.Fatal("esc must cancel")
	}
}

func TestRunEventsAppended(t *testing.T) {
	m := refreshed(t, newFake())
	ch := make(chan tea.Msg, 1)
	m.run = &runPanel{Action: actions["s"], Site: "B", Started: t0, ch: ch}
	m, cmd := update(t, m, runEventMsg{e: event.Event{Kind: event.StepStart, Task: "renounce/A/ccm"}})
	if cmd == nil || len(m.run.Lines) != 1 || m.run.Lines[0].Outcome != "running" {
		t.Fatalf("start not appended or not re-armed: %+v", m.run.Lines)
	}
	m, _ = update(t, m, runEventMsg{e: event.Event{Kind: event.StepEnd, Task: "renounce/A/ccm", Outcome: event.Failed, Duration: 2 * time.Second, Message: "still running"}})
	if l := m.run.Lines[0]; len(m.run.Lines) != 1 || l.Outcome != event.Failed || l.Duration != 2*time.Second {
		t.Fatalf("end not folded into its line: %+v", m.run.Lines)
	}
	m, cmd = update(t, m, runDoneMsg{err: errors.New("switchover FAILED"), at: t0.Add(3 * time.Second)})
	if !m.run.Done || m.run.Outcome != event.Failed || cmd == nil {
		t.Fatal("done not recorded or no refresh after the run")
	}
	if v := m.View(); !strings.Contains(v, "FAILED in 3s: switchover FAILED") {
		t.Errorf("outcome not shown:\n%s", v)
	}
	// no second run while one is going
	m.run.Done = false
	m, _ = update(t, m, press("t"))
	if m.mode == modeConfirm {
		t.Error("a second run must wait")
	}
}

func TestUnhealthyShowsReasonsAndFixes(t *testing.T) {
	f := newFake()
	f.snap = splitSnapshot()
	m := refreshed(t, f)
	v := m.View()
	for _, want := range []string{"SPLIT", "Why: SPLIT", "haproxy", "Fix:", "sitectl takeover --site A"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
}

func TestResizeFitsTheScreen(t *testing.T) {
	f := newFake()
	f.snap = bigSnapshot(200)
	m := refreshed(t, f)
	for _, sz := range [][2]int{{80, 24}, {120, 40}, {200, 60}, {40, 10}} {
		m, _ = update(t, m, tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		lines := strings.Split(m.View(), "\n")
		if len(lines) != sz[1] {
			t.Errorf("%dx%d: %d lines", sz[0], sz[1], len(lines))
		}
		for i, l := range lines {
			if w := ansi.StringWidth(l); w != sz[0] {
				t.Errorf("%dx%d: line %d is %d wide: %q", sz[0], sz[1], i, w, l)
				break
			}
		}
	}
}

func TestQuitCancelsARunningRun(t *testing.T) {
	f := newFake()
	d := f.deps()
	cancelled := make(chan struct{})
	d.Run = func(ctx context.Context, rb, site string, sink event.Sink) error {
		sink.Emit(event.Event{Kind: event.StepStart, Task: "t1"})
		<-ctx.Done()
		close(cancelled)
		return ctx.Err()
	}
	m := New(context.Background(), d)
	m, _ = update(t, m, refreshMsg{snap: f.snap, at: t0})
	m, _ = update(t, m, press("t"))
	m = typeText(t, m, "A")
	m, cmd := update(t, m, press("enter"))
	m, _ = update(t, m, cmd()) // the first event; the run now waits
	m, cmd = update(t, m, press("q"))
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Fatal("q does not quit")
	}
	if !m.WaitRun(2 * time.Second) {
		t.Fatal("the run was not cancelled on quit")
	}
	<-cancelled
}

// The board tells for how long each service has been in its state: "≥" for
// as long as the board has looked (it was already so at the first look),
// plain after a change it saw.
func TestServiceSince(t *testing.T) {
	f := newFake()
	m := refreshed(t, f)
	f.clock.now = t0.Add(90 * time.Second)
	m, _ = update(t, m, refreshMsg{snap: f.snap, at: f.clock.now})
	if v := ansi.Strip(m.View()); !strings.Contains(v, "chat                running   ≥1m") {
		t.Fatalf("after 90s:\n%s", v)
	}
	snap := healthySnapshot()
	snap.Sites[0].Hosts[0].Services[3].State = services.Stopped
	f.clock.now = t0.Add(100 * time.Second)
	m, _ = update(t, m, refreshMsg{snap: snap, at: f.clock.now})
	f.clock.now = t0.Add(130 * time.Second)
	v := ansi.Strip(m.View())
	if !strings.Contains(v, "chat                stopped   30s") || !strings.Contains(v, "ccm                 running   ≥2m") {
		t.Fatalf("after a change:\n%s", v)
	}
	// a host that stops answering keeps its services' last values, aged
	snap.Sites[0].Hosts[0].Reachable, snap.Sites[0].Hosts[0].Error = false, "a-app1: no answer within 2s"
	m, _ = update(t, m, refreshMsg{snap: snap, at: f.clock.now})
	f.clock.now = t0.Add(140 * time.Second)
	if v := ansi.Strip(m.View()); !strings.Contains(v, "a-app1  NO ANSWER, last seen 40s ago") || !strings.Contains(v, "chat                stopped   (40s old)") {
		t.Fatalf("unreachable host:\n%s", v)
	}
}

func TestCompact(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{-time.Second, "0s"}, {0, "0s"}, {59 * time.Second, "59s"}, {61 * time.Second, "1m"}, {time.Hour + 5*time.Minute, "1h05m"}, {51 * time.Hour, "2d3h"}} {
		if got := compact(c.d); got != c.want {
			t.Errorf("compact(%s) = %q, want %q", c.d, got, c.want)
		}
	}
}

// One site named, part of the traffic served by nobody: PARTLY, not SPLIT,
// with the reasons below.
func TestPartialVerdict(t *testing.T) {
	f := newFake()
	layers := f.snap.Verdict.Layers
	layers[3] = checks.LayerVerdict{Layer: checks.LayerHAProxy, State: checks.ServePartial, Site: "A", Sites: []string{"A"},
		Detail: "only part of the traffic has a server: site A per ccm; no server takes traffic in chat", Fix: "echo ... | socat"}
	f.snap.Verdict = checks.Combine(layers)
	m := refreshed(t, f)
	v := ansi.Strip(m.View())
	if !strings.Contains(headline(v), "site A serves PARTLY") || strings.Contains(v, "SPLIT") {
		t.Fatalf("partial verdict:\n%s", v)
	}
	if !strings.Contains(v, "Why: PARTIAL: site A per services, mongodb, activemq, haproxy (partly)") || !strings.Contains(v, "haproxy: echo ... | socat") {
		t.Fatalf("partial verdict without its reasons and fix:\n%s", v)
	}
}

func headline(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// Every line the board draws goes through the one redactor, before it is
// cut to the column: a secret echoed by a host's check shows neither whole
// nor in part, at any width, in the main view and in the run pane.
func TestBoardRedactsEverySecretBeforeCutting(t *testing.T) {
	const secret = "Tr1cky#Pass-9f2e7c"
	f := newFake()
	f.snap = healthySnapshot()
	f.snap.Sites[0].Hosts[0].Services[0].Probe.Detail = "HTTP 500: login failed for admin:" + secret
	f.snap.Sites[0].Hosts[0].Error = "ssh: " + secret + " rejected"
	d := f.deps()
	d.Redact = journal.NewRedactor(secret)
	m := New(context.Background(), d)
	m, _ = update(t, m, refreshMsg{snap: f.snap, at: f.clock.now})
	m, _ = update(t, m, runEventMsg{e: event.Event{Kind: event.StepAct, Task: "start/a-app1/ccm", Stderr: "password=" + secret}})
	for _, w := range []int{200, 120, 90, 70, 50} {
		m, _ = update(t, m, tea.WindowSizeMsg{Width: w, Height: 60})
		v := m.View()
		for i := 6; i <= len(secret); i++ {
			if strings.Contains(v, secret[:i]) {
				t.Fatalf("width %d: the view shows %q of the secret:\n%s", w, secret[:i], v)
			}
		}
	}
	// the same view without a redactor does show it: the test sees the line
	d.Redact = nil
	m = New(context.Background(), d)
	m, _ = update(t, m, tea.WindowSizeMsg{Width: 200, Height: 60})
	m, _ = update(t, m, refreshMsg{snap: f.snap, at: f.clock.now})
	if !strings.Contains(m.View(), secret[:6]) {
		t.Fatalf("the secret's line is not on screen at all; the test proves nothing:\n%s", m.View())
	}
}
