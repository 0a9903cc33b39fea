package root

// A core service dies on the active site: the usual reason to leave it.
// HAProxy shows its server DOWN (never DRAIN), with no session to wait for:
// the drain of a renounce, a switchover or a resume accepts it at once and
// the run ends with every layer on the other site. Real sshd hosts, a real
// HAProxy, two real ActiveMQ brokers.

import (
	"bytes"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitectl/sitectl/internal/testenv/haproxy"
	"github.com/sitectl/sitectl/runbooks/event"
)

// chatDies kills site A's chat: the process, its HAProxy stand-in (so the
// server goes DOWN) and its connector (it lived in the chat process).
func (l *layered) chatDies(t *testing.T) {
	t.Helper()
	l.svc.Kill("a-chat")
	l.hap.Standin("be_chat", "chat_a").Kill()
	l.conA.Close()
	l.hap.WaitStatus(t, "be_chat", "chat_a", 10*time.Second, haproxy.HasPrefix("DOWN"))
}

// everyLayerOn fails the test unless check says every layer is on site.
func (l *layered) everyLayerOn(t *testing.T, site string) {
	t.Helper()
	c := l.checkJSON(t, site)
	for _, ly := range c.Snapshot.Verdict.Layers {
		if ly.State != "one" || ly.Site != site {
			t.Errorf("layer %s: %s %s (%s), want one %s", ly.Layer, ly.State, ly.Site, ly.Detail, site)
		}
	}
	if c.Snapshot.Verdict.State != "one" || c.Snapshot.Verdict.Site != site {
		t.Errorf("verdict %+v, want site %s serves", c.Snapshot.Verdict, site)
	}
}

// drainSaysDown checks that the drain step of the newest run passed and
// said why a DOWN server counts as drained.
func (l *layered) drainSaysDown(t *testing.T, step string) {
	t.Helper()
	run := l.lastRun()
	if o := run.TaskOutcomes()[step]; o != event.OK && o != event.Skipped {
		t.Errorf("%s: %s, want ok or skipped", step, o)
	}
	said := false
	for _, e := range run.Events {
		if strings.HasPrefix(e.Task, step) && strings.Contains(e.Message, "be_chat/chat_a is DOWN with 0 sessions: nothing to drain") {
			said = true
		}
	}
	if !said {
		t.Errorf("the journal of %s does not say chat_a was DOWN with nothing to drain", step)
	}
}

func TestSwitchoverAwayFromADeadService(t *testing.T) {
	l := newLayered(t)
	l.chatDies(t)
	r := l.sitectl(t.Context(), nil, "switchover", "--site", "B", "--yes")
	if r.code != 0 {
		t.Fatalf("switchover B with A's chat dead: exit %d\n%s", r.code, r.errOut)
	}
	if !strings.Contains(r.errOut, "nothing to drain") {
		t.Errorf("the output does not say the DOWN server had nothing to drain:\n%s", r.errOut)
	}
	l.drainSaysDown(t, "renounce-other/drain-haproxy/haproxy")
	l.everyLayerOn(t, "B")
}

func TestRenounceOfTheBrokenSiteThenTakeover(t *testing.T) {
	l := newLayered(t)
	l.chatDies(t)
	r := l.sitectl(t.Context(), nil, "renounce", "--site", "A", "--yes", "--force", "--reason", "chat died on A")
	if r.code != 0 {
		t.Fatalf("renounce A with its chat dead: exit %d\n%s", r.code, r.errOut)
	}
	l.drainSaysDown(t, "drain-haproxy/haproxy")
	r = l.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes")
	if r.code != 0 {
		t.Fatalf("takeover B after renounce A: exit %d\n%s", r.code, r.errOut)
	}
	// a takeover does not move a healthy primary (a switchover does): every
	// layer but MongoDB is on B, and MongoDB has a writable primary
	c := l.checkJSON(t, "B")
	for _, ly := range c.Snapshot.Verdict.Layers {
		if ly.Layer == "mongodb" {
			if ly.State != "one" {
				t.Errorf("mongodb: %s %s (%s), want a writable primary", ly.State, ly.Site, ly.Detail)
			}
			continue
		}
		if ly.State != "one" || ly.Site != "B" {
			t.Errorf("layer %s: %s %s (%s), want one B", ly.Layer, ly.State, ly.Site, ly.Detail)
		}
	}
}

// A switchover killed right after the stop of A's chat began: at resume the
// chat is gone, its server DOWN; the drain is observed again and holds.
func TestResumeOfASwitchoverKilledAtAStop(t *testing.T) {
	l := newLayered(t)
	bin := buildBinary(t)
	c := l.command(bin, "switchover", "--site", "B", "--yes")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	id := l.waitJournal(func(e event.Event) bool {
		return (e.Kind == event.StepStart || e.Kind == event.StepAct) && e.Service == "chat" && strings.Contains(e.Task, "stop-chat")
	})
	_ = c.Process.Signal(syscall.SIGKILL)
	_ = c.Wait()
	l.chatDies(t) // the stop went on without sitectl
	out, err := l.command(bin, "resume", id, "--yes").CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s\n(killed run:\n%s)", err, out, stderr.String())
	}
	l.drainSaysDown(t, "renounce-other/drain-haproxy/haproxy")
	l.everyLayerOn(t, "B")
}
