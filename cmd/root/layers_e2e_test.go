package root

// End-to-end checks of every layer: real sshd hosts, a real haproxy in front
// of both sites, and two real ActiveMQ brokers in a network of brokers with
// each site's connector subscribed at its site's priority.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/internal/mongosim"
	"github.com/sitectl/sitectl/internal/testenv/activemq"
	"github.com/sitectl/sitectl/internal/testenv/haproxy"
	"github.com/sitectl/sitectl/runbooks/event"
)

const queue = "ef.chat.requests"

type layered struct {
	*deployment
	sim  *mongosim.Sim
	hap  *haproxy.HAProxy
	amq  *activemq.Pair
	conA *activemq.Consumer
	conB *activemq.Consumer
}

func newLayered(t *testing.T) *layered {
	t.Helper()
	d := newDeployment(t)
	hap := haproxy.StartWith(t, haproxy.Options{Backends: []haproxy.BackendSpec{{Name: "be_chat", Servers: []haproxy.ServerSpec{
		{Name: "chat_a", Site: "A"}, {Name: "chat_b", Site: "B", Backup: true},
	}}}})
	pair := activemq.StartPair(t, activemq.PairOptions{Link: activemq.LinkDuplex, DecreaseNetworkConsumerPriority: "false"})
	sim, err := mongosim.Start(mongosim.Config{SetName: "rs0", ElectionTimeout: time.Second, Heartbeat: 200 * time.Millisecond, InitialPrimary: "mongo-a",
		Members: []mongosim.MemberConfig{{Name: "mongo-a", Priority: 2}, {Name: "mongo-b", Priority: 1}, {Name: "mongo-arb", Arbiter: true}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	d.match = map[string]string{"A": "    consumer_match: [site-a-]\n", "B": "    consumer_match: [site-b-]\n"}
	d.extra = fmt.Sprintf(`witness:
  name: W
  hosts:
    - {name: w-arb, local: true}
mongodb:
  replica_set: rs0
  timeout: 2s
  members:
    - {name: mongo-a, address: %s, site: A}
    - {name: mongo-b, address: %s, site: B}
    - {name: mongo-arb, address: %s, site: W, arbiter: true}
activemq:
  timeout: 5s
  queues: [%s]
  brokers:
    - {name: amq-a, site: A, stomp: %s}
    - {name: amq-b, site: B, stomp: %s}
haproxy:
  runtime_api: %s
  backends:
    - name: be_chat
      servers: {chat_a: A, chat_b: B}
`, sim.Addr("mongo-a"), sim.Addr("mongo-b"), sim.Addr("mongo-arb"), queue, pair.A.STOMPAddr(), pair.B.STOMPAddr(), hap.AdminAPI())
	d.write()
	l := &layered{deployment: d, sim: sim, hap: hap, amq: pair}
	// site A is active: its services run and its connector holds priority 10
	for _, n := range []string{"a-ccm", "a-comms", "a-mre", "a-chat"} {
		d.svc.Start(n)
	}
	l.conA = pair.A.Subscribe(t, queue, 10, activemq.ClientOptions{ClientID: "site-a-connector", Host: "site-a-app"})
	l.conB = pair.B.Subscribe(t, queue, 5, activemq.ClientOptions{ClientID: "site-b-connector", Host: "site-b-app"})
	return l
}

type checkJSON struct {
	Ready struct {
		Ready   bool
		Reasons []string
	}
	Snapshot struct {
		Verdict struct {
			State, Site, Summary string
			Layers               []struct{ Layer, State, Site, Detail string }
		}
	}
}

func (l *layered) checkJSON(t *testing.T, site string) checkJSON {
	t.Helper()
	r := l.sitectl(t.Context(), nil, "check", "--site", site, "-o", "json")
	var c checkJSON
	if err := json.Unmarshal([]byte(r.out), &c); err != nil {
		t.Fatalf("check -o json: %v\n%s\n%s", err, r.out, r.errOut)
	}
	return c
}

func TestCheckEveryLayerThenSwitchSites(t *testing.T) {
	l := newLayered(t)

	r := l.sitectl(t.Context(), nil, "check", "--site", "B")
	if r.code != cmdutil.ExitRefused {
		t.Errorf("check --site B while A serves: exit %d, want 3", r.code)
	}
	for _, want := range []string{"LAYER", "services  one", "mongodb   ok", "activemq  one", "haproxy   one", "Verdict: site A serves traffic (every layer agrees)", "Ready for takeover of site B: no", "site A is still active"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("check output lacks %q:\n%s", want, r.out)
		}
	}
	c := l.checkJSON(t, "B")
	if c.Snapshot.Verdict.State != "one" || c.Snapshot.Verdict.Site != "A" || len(c.Snapshot.Verdict.Layers) != 4 || c.Ready.Ready {
		t.Fatalf("check JSON: %+v", c)
	}

	// A goes passive: drain and maint in HAProxy, services stopped; its
	// connector goes away with its chat service (the lab's chat stand-in
	// owns its connector; here the test closes it when chat stops)
	go func() {
		for l.svc.Running("a-chat") {
			time.Sleep(10 * time.Millisecond)
		}
		l.conA.Close()
	}()
	// renouncing the only active site is refused: no site would serve
	r = l.sitectl(t.Context(), nil, "renounce", "--site", "A", "--yes")
	if r.code != cmdutil.ExitRefused || !strings.Contains(r.errOut, "no site would be active") || !strings.Contains(r.errOut, "sitectl switchover --site B") {
		t.Fatalf("renounce A while B is passive: exit %d, want 3 naming the switchover\n%s", r.code, r.errOut)
	}
	if !l.svc.Running("a-chat") {
		t.Fatal("a refused renounce stopped a-chat")
	}
	r = l.sitectl(t.Context(), nil, "renounce", "--site", "A", "--yes", "--force", "--reason", "e2e: the two-step move, takeover B follows")
	if r.code != 0 {
		t.Fatalf("renounce A: exit %d\n%s", r.code, r.errOut)
	}
	if st, _ := l.hap.Status("be_chat", "chat_a"); !strings.HasPrefix(st, "MAINT") {
		t.Errorf("after renounce A, chat_a is %q, want MAINT", st)
	}
	r = l.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes")
	if r.code != 0 {
		t.Fatalf("takeover B: exit %d\n%s", r.code, r.errOut)
	}
	run := l.lastRun()
	var verdict *event.Event
	for i, e := range run.Events {
		if e.Kind == event.Verdict && strings.HasPrefix(e.Message, "after: ") {
			verdict = &run.Events[i]
		}
	}
	if verdict == nil || verdict.Outcome != event.OK || !strings.Contains(verdict.Message, "site B serves traffic") {
		t.Fatalf("journal verdict after takeover: %+v", verdict)
	}
	if o := run.TaskOutcomes()["verify-activemq/activemq"]; !o.Succeeded() {
		t.Errorf("verify-activemq %s", o)
	}
	c = l.checkJSON(t, "B")
	if c.Snapshot.Verdict.State != "one" || c.Snapshot.Verdict.Site != "B" {
		t.Errorf("after takeover: verdict %+v", c.Snapshot.Verdict)
	}
	rep := l.sitectl(t.Context(), nil, "report", run.ID())
	if !strings.Contains(rep.out, "## Verdict") || !strings.Contains(rep.out, "after: site B serves traffic") {
		t.Errorf("the report lacks the verdict:\n%s", rep.out)
	}
	// where the time went: the critical path through the takeover's steps
	// goes through the chat start
	if _, after, ok := strings.Cut(rep.out, "## Outcome"); ok {
		outcome, _, _ := strings.Cut(after, "## Verdict")
		if n := strings.Count(outcome, " tasks: "); n != 1 {
			t.Errorf("the report's outcome states the task count %d times, want once:\n%s", n, outcome)
		}
	} else {
		t.Error("the report has no Outcome section")
	}
	for _, want := range []string{"## Where the time went", "| critical path: ", "→ start-chat", "| `wait-mongodb` |"} {
		if !strings.Contains(rep.out, want) {
			t.Errorf("the report lacks %q:\n%s", want, rep.out)
		}
	}
	for _, ly := range c.Snapshot.Verdict.Layers {
		if ly.Layer == "mongodb" {
			continue // neutral: the primary may stay on A (primary_follows_active is off)
		}
		if ly.State != "one" || ly.Site != "B" {
			t.Errorf("layer %s: %s %s (%s)", ly.Layer, ly.State, ly.Site, ly.Detail)
		}
	}
}

func TestTakeoverFailsWhenALayerDisagrees(t *testing.T) {
	l := newLayered(t)
	for _, n := range []string{"a-ccm", "a-comms", "a-mre", "a-chat"} {
		l.svc.Kill(n) // site A crashed, but its connector (priority 10) is still subscribed
	}
	r := l.sitectl(t.Context(), nil, "takeover", "--site", "B", "--yes")
	if r.code == 0 {
		t.Fatalf("takeover B succeeded although site A's consumers still win on the brokers\n%s", r.errOut)
	}
	if !strings.Contains(r.errOut, "verify-activemq (activemq layer, site B): expected site B's consumers hold the top priority on every broker within 30s, observed one A") {
		t.Errorf("output does not say which layer disagrees:\n%s", r.errOut)
	}
	l.running("b-chat") // the services part did run
}

// A planned switchover back to A moves nothing in MongoDB (the primary is
// on A), then a switchover to B moves the primary there with a priority
// reconfig, and it stays.
func TestSwitchoverMovesTheMongoPrimary(t *testing.T) {
	l := newLayered(t)
	go func() {
		for l.svc.Running("a-chat") {
			time.Sleep(10 * time.Millisecond)
		}
		l.conA.Close()
	}()
	r := l.sitectl(t.Context(), nil, "switchover", "--site", "B", "--yes")
	if r.code != 0 {
		t.Fatalf("switchover B: exit %d\n%s", r.code, r.errOut)
	}
	run := l.lastRun()
	if o := run.TaskOutcomes()["move-mongodb/mongodb"]; o != event.OK {
		t.Errorf("move-mongodb %s", o)
	}
	time.Sleep(3 * time.Second) // past a priority-takeover window: the move must stick
	c := l.checkJSON(t, "B")
	for _, ly := range c.Snapshot.Verdict.Layers {
		if ly.Layer == "mongodb" && ly.Site != "B" {
			t.Errorf("after switchover to B the primary is on %q (%s)", ly.Site, ly.Detail)
		}
	}
	if c.Snapshot.Verdict.State != "one" || c.Snapshot.Verdict.Site != "B" {
		t.Errorf("verdict %+v", c.Snapshot.Verdict)
	}
}
