package lab_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sitectl/sitectl/internal/lab"
)

// One lab for the package's tests, reset between them.
func TestMain(m *testing.M) { lab.Main(m) }

// The lab comes up with site A active and site B passive as sitectl sees
// it, and cutting site A off makes it unreachable within the inventory's
// connect timeout (2s); healing brings it back.
func TestLabFailAndHeal(t *testing.T) {
	l := lab.Up(t)

	out, code := l.Sitectl("status")
	if code != 0 || !strings.Contains(out, "only site A is active") {
		t.Fatalf("status after up: exit %d, want site A active:\n%s", code, out)
	}
	if _, code := l.Sitectl("plan", "takeover", "--site", "B"); code != 3 {
		t.Errorf("plan takeover --site B with A active: exit %d, want 3 (refused)", code)
	}

	l.Fail("A")
	start := time.Now()
	out, _ = l.Sitectl("status", "--site", "A")
	t.Logf("status of a cut-off site took %s (about the 2s connect timeout on a quiet machine)", time.Since(start))
	if !strings.Contains(out, "UNREACHABLE") {
		t.Errorf("status after fail A: site A not unreachable:\n%s", out)
	}
	l.Heal("A")
	out, code = l.Sitectl("status")
	if code != 0 || !strings.Contains(out, "only site A is active") {
		t.Fatalf("status after heal: exit %d:\n%s", code, out)
	}
}

// A graceful drain: sessions held through HAProxy show in scur and on the
// stand-in; renounce waits for them; ending them lets it finish. Then the
// other injections, each undone by the next test's reset.
func TestLabDrainAndInjections(t *testing.T) {
	l := lab.Up(t)

	s := l.OpenSessions(3, false)
	if got := l.HAProxySessions("A"); got != 3 {
		t.Fatalf("haproxy scur of chat-a = %d, want 3", got)
	}
	if got := l.Sessions("A"); got != 3 {
		t.Fatalf("chat stand-in of A holds %d sessions, want 3", got)
	}
	done := make(chan struct{})
	var out string
	var code int
	go func() {
		defer close(done)
		out, code = l.Sitectl("switchover", "--site", "B", "--yes")
	}()
	// renounce of A is draining it: chat-a in DRAIN, still holding the sessions
	waitFor(t, 30*time.Second, func() bool {
		for _, srv := range l.Servers() {
			if srv.Server == "chat-a" {
				return srv.Status == "DRAIN" && srv.Scur == 3
			}
		}
		return false
	})
	time.Sleep(time.Second)
	select {
	case <-done:
		t.Fatalf("switchover finished while A still held sessions:\n%s", out)
	default:
	}
	if n := l.CloseSessions("A", -1); n != 3 {
		t.Errorf("closed %d sessions, want 3", n)
	}
	<-done
	if code != 0 {
		t.Fatalf("switchover --site B: exit %d:\n%s", code, out)
	}
	if s.Ended() != 3 {
		t.Errorf("%d sessions ended gracefully, want 3", s.Ended())
	}
	if !l.ServiceRunning("B", "chat") || l.ServiceRunning("A", "chat") {
		t.Error("after switchover to B: chat should run on B only")
	}

	// a crash of the stand-in: its status says stopped
	l.KillService("B", "chat")
	if l.ServiceRunning("B", "chat") {
		t.Error("chat still running on B after kill-service")
	}

	// broker down: the site's connector moves to the other broker
	l.StopBroker("B")
	l.StartService("B", "chat")
	waitFor(t, 10*time.Second, func() bool { c := l.Connector("B"); return c.Connected && c.Broker != c.Preferred })
	l.StartBroker("B")
	waitFor(t, 10*time.Second, func() bool { c := l.Connector("B"); return c.Connected && c.Broker == c.Preferred })

	// broker link cut: messages sent to A's broker wait there
	l.CutBrokerLink()
	before := l.Connector("B").Consumed
	l.Send("A", 2)
	time.Sleep(time.Second)
	if got := l.Connector("B").Consumed; got != before {
		t.Errorf("B consumed %d messages through a cut broker link", got-before)
	}
	l.HealBrokerLink()
	waitFor(t, 15*time.Second, func() bool { return l.Connector("B").Consumed == before+2 })

	// MongoDB: stop the primary, the other data member is elected
	if l.Env.MongoMode() != lab.MongoAbsent {
		l.StopMongo("A")
		l.WaitPrimary("B", 30*time.Second)
		l.StartMongo("A")
	}
}

func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
