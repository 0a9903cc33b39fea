package activemq_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitectl/sitectl/adapters/activemq"
	camq "github.com/sitectl/sitectl/checks/activemq"
	"github.com/sitectl/sitectl/checks/layer"
	testenv "github.com/sitectl/sitectl/internal/testenv/activemq"
	"github.com/sitectl/sitectl/inventory"
)

const amqQueue = "CC.Q"

func amqInventory(addr1, addr2 string, queues ...string) *inventory.Inventory {
	if len(queues) == 0 {
		queues = []string{amqQueue}
	}
	return &inventory.Inventory{
		Deployment: "test",
		Sites: []*inventory.Site{
			{Name: "A", Role: inventory.Primary, ConsumerMatch: []string{"site-a-", "a-app"}},
			{Name: "B", Role: inventory.Secondary, ConsumerMatch: []string{"site-b-", "b-app"}},
		},
		ActiveMQ: &inventory.ActiveMQ{
			Timeout: inventory.Duration(3 * time.Second),
			Brokers: []*inventory.Broker{
				{Name: "amq1", Site: "A", STOMP: addr1},
				{Name: "amq2", Site: "B", STOMP: addr2},
			},
			Queues: queues,
		},
	}
}

func TestConsumerSite(t *testing.T) {
	inv := &inventory.Inventory{Sites: []*inventory.Site{
		{Name: "A", ConsumerMatch: []string{"site-a-", "a-app", "10.1.", "dup-"}},
		{Name: "B", ConsumerMatch: []string{"site-b-", "b-app", "10.2.", "site-a-special", "dup-"}},
	}}
	tests := []struct {
		clientID, clientIP string
		site               string
		ambiguous          bool
	}{
		{"site-a-ccm-1", "", "A", false},
		{"ID:vm-1-2-3:4", "a-app", "A", false},
		{"ID:vm-1-2-3:4", "a-app2.example", "A", false}, // prefix of the host header
		{"", "b-app", "B", false},
		{"site-b-x", "a-app", "B", false},        // equally long prefixes, different fields: the longer wins (site-b- 7 > a-app 5)
		{"site-a-special-1", "", "B", false},     // the longest prefix wins
		{"", "tcp://10.1.4.5:61616", "A", false}, // OpenWire address, scheme stripped
		{"", "10.2.0.9", "B", false},             //
		{"dup-1", "", "", true},                  // two sites, same prefix
		{"other", "somewhere", "", false},        // nothing matches
		{"", "", "", false},                      //
		{"SITE-A-1", "", "", false},              // case-sensitive
		{"amqA-to-amqB_inbound", "vm://amqA#0", "", false},
	}
	for _, tt := range tests {
		site, amb := camq.ConsumerSite(inv, tt.clientID, tt.clientIP)
		if site != tt.site || amb != tt.ambiguous {
			t.Errorf("ConsumerSite(%q, %q) = %q, %v; want %q, %v", tt.clientID, tt.clientIP, site, amb, tt.site, tt.ambiguous)
		}
	}
}

// synthetic builds two broker observations from a compact description.
type synth struct {
	amq1, amq2 string // up (default), down, auth, timeout
	consumers  []sc
	link       bool
	decrease   bool // bridge consumers at -5 (decreaseNetworkConsumerPriority=true)
	malformed  int  // malformed consumer advisories on amq1's queue
	unknownCon bool // amq1's first consumer has no ConnectionInfo
	queues     []string
	// staleBridge: a broker that is down still has its bridge consumers on
	// the other one (kept until the bridge's inactivity timeout)
	staleBridge bool
}

// sc is one consumer: of a site ("A", "B", "X" unmatched), on broker 1 or 2.
type sc struct {
	site   string
	broker int
	prio   int
	queue  string
}

func (s synth) build() (*inventory.Inventory, []*activemq.BrokerObservation) {
	inv := amqInventory("10.0.0.1:61613", "10.0.0.2:61613", s.queues...)
	states := []string{s.amq1, s.amq2}
	names := []string{"amqA", "amqB"}
	ids := []string{"ID:amqA-0:1", "ID:amqB-0:1"}
	running := func(i int) bool { return states[i] != "down" }
	obs := make([]*activemq.BrokerObservation, 2)
	for i, b := range inv.ActiveMQ.Brokers {
		o := &activemq.BrokerObservation{Broker: b.Name, Site: b.Site, Address: b.STOMP, BrokerName: names[i], BrokerID: ids[i], Quiet: true}
		for _, q := range inv.ActiveMQ.Queues {
			o.Queues = append(o.Queues, activemq.QueueObservation{Name: q, ConsumerCount: -1})
		}
		obs[i] = o
	}
	add := func(i int, q string, c activemq.Consumer) {
		qo := obs[i].Queue(q)
		qo.Consumers = append(qo.Consumers, c)
	}
	for n, c := range s.consumers {
		q := c.queue
		if q == "" {
			q = amqQueue
		}
		i := c.broker - 1
		id := fmt.Sprintf("ID:client-%d-1-2:1", n)
		clientID := map[string]string{"A": "site-a-c", "B": "site-b-c", "X": "stray-"}[c.site] + fmt.Sprint(n)
		known := !(s.unknownCon && i == 0 && n == 0)
		add(i, q, activemq.Consumer{ID: id + ":-1:1", ConnectionID: id, ClientID: clientID, ClientIP: strings.ToLower(c.site) + "-host", Priority: c.prio, ConnectionKnown: known})
		if known {
			obs[i].Connections = append(obs[i].Connections, activemq.Connection{ID: id, ClientID: clientID})
		}
		// the other broker mirrors it through the bridge (conduit: one
		// bridge consumer per queue, the first remote consumer's priority)
		j := 1 - i
		if s.link && (running(i) || s.staleBridge) && running(j) && len(bridgesOf(obs[j].Queue(q))) == 0 {
			p := c.prio
			if s.decrease {
				p = -5
			}
			bid := fmt.Sprintf("%s->%s-1-2-3:1", names[j], names[i])
			add(j, q, activemq.Consumer{ID: bid + ":1:" + fmt.Sprint(n), ConnectionID: bid, ClientID: names[j] + "-to-" + names[i] + "_inbound", ClientIP: "vm://" + names[j] + "#0",
				ConnectionKnown: true, Priority: p, Network: true, RemoteBrokerID: ids[i], RemoteBroker: names[i], BrokerPath: []string{ids[i]}})
		}
	}
	if s.link && running(0) && running(1) {
		for i := range obs {
			obs[i].Connections = append(obs[i].Connections, activemq.Connection{ID: fmt.Sprintf("%s->%s-1-2-3:1", names[i], names[1-i]), Bridge: true})
		}
	}
	obs[0].Queues[0].Malformed = s.malformed
	obs[0].Malformed = s.malformed
	if s.malformed > 0 {
		obs[0].MalformedSample = `/topic/ActiveMQ.Advisory.Consumer.Queue.CC.Q: malformed advisory: not JSON: "{\"Cons"`
	}
	for i, st := range states {
		b := inv.ActiveMQ.Brokers[i]
		var err *activemq.Error
		switch st {
		case "down":
			err = &activemq.Error{Broker: b.Name, Address: b.STOMP, Op: activemq.OpDial, Err: fmt.Errorf("dial tcp %s: %w", b.STOMP, syscall.ECONNREFUSED)}
		case "auth":
			err = &activemq.Error{Broker: b.Name, Address: b.STOMP, Op: activemq.OpAuth, Err: errors.New("the broker refused the login")}
		case "timeout":
			err = &activemq.Error{Broker: b.Name, Address: b.STOMP, Op: activemq.OpConnect, Err: errors.New("no STOMP CONNECTED frame within 3s")}
		}
		if err != nil {
			obs[i] = &activemq.BrokerObservation{Broker: b.Name, Site: b.Site, Address: b.STOMP, Err: err, ErrText: err.Error()}
		}
	}
	return inv, obs
}

func bridgesOf(q *activemq.QueueObservation) []activemq.Consumer {
	var out []activemq.Consumer
	for _, c := range q.Consumers {
		if c.Network {
			out = append(out, c)
		}
	}
	return out
}

func TestActiveMQLayerSynthetic(t *testing.T) {
	a10, b5 := sc{"A", 1, 10, ""}, sc{"B", 2, 5, ""}
	tests := []struct {
		name       string
		s          synth
		state      string
		site       string
		notes      []string // substrings of the notes, all required
		detail     string   // substring of Detail
		noteAbsent string
		fix        string
	}{
		{"normal: site A has the higher priority", synth{consumers: []sc{a10, b5}, link: true},
			layer.ServeOne, "A", []string{"normal operation"}, "every broker that is up (amq1, amq2)", "scenario", ""},
		{"scenario 3: site A back, site B keeps serving", synth{consumers: []sc{{"A", 1, 5, ""}, {"B", 2, 10, ""}}, link: true},
			layer.ServeOne, "B", []string{"failover scenario 3", "site A is restored but site B keeps serving"}, "", "expected", ""},
		{"scenario 1: AMQ-1 down while site A active", synth{amq1: "down", consumers: []sc{{"A", 2, 10, ""}, {"B", 2, 5, ""}}},
			layer.ServeOne, "A", []string{"failover scenario 1", "amq1 (site A's broker) is down while site A is active"}, "down: amq1", "expected", ""},
		{"scenario 1 with the wrong priorities", synth{amq1: "down", consumers: []sc{{"A", 2, 5, ""}, {"B", 2, 10, ""}}},
			layer.ServeOne, "B", []string{"failover scenario 1", "expected site A to receive the requests, observed: site B"}, "", "", ""},
		{"scenario 2: AMQ-1 and site A down", synth{amq1: "down", consumers: []sc{b5}},
			layer.ServeOne, "B", []string{"failover scenario 2", "amq1 and site A are both down"}, "", "expected", ""},
		{"scenario 2 pending: AMQ-1 and site A down, site B not taken over", synth{amq1: "down"},
			layer.ServeNone, "", []string{"failover scenario 2, pending", "requests wait on amq2 until site B takes over (sitectl takeover --site B)"}, "", "", ""},
		{"scenario 4: link between brokers down", synth{consumers: []sc{a10, b5}},
			layer.ServeSplit, "", []string{"failover scenario 4", "link between the brokers is down", "independently"}, "site A on amq1/CC.Q; site B on amq2/CC.Q", "", ""},
		{"scenario 5: AMQ-1 back, site A and AMQ-2 down", synth{amq2: "down", consumers: []sc{{"B", 1, 5, ""}}},
			layer.ServeOne, "B", []string{"failover scenario 5", "client → amq1 → site B"}, "", "expected", ""},
		{"scenario 6: site A down, both brokers up", synth{consumers: []sc{b5}, link: true},
			layer.ServeOne, "B", []string{"failover scenario 6"}, "", "expected", ""},
		{"scenario 7: site B down, both brokers up", synth{consumers: []sc{a10}, link: true},
			layer.ServeOne, "A", []string{"failover scenario 7", "amq2 forwards its requests to amq1"}, "", "expected", ""},
		{"decreaseNetworkConsumerPriority trap", synth{consumers: []sc{a10, b5}, link: true, decrease: true},
			layer.ServeSplit, "", []string{"decreaseNetworkConsumerPriority trap on broker amq1", "priority -5", "site B's consumers behind the bridge can never win over a local consumer on amq1", "5.18", `decreaseNetworkConsumerPriority="false"`},
			"", "", `decreaseNetworkConsumerPriority="false"`},
		{"trap without a local competitor still routes over the bridge", synth{consumers: []sc{a10}, link: true, decrease: true},
			layer.ServeOne, "A", []string{"decreaseNetworkConsumerPriority trap on broker amq2", "failover scenario 7"}, "", "", `decreaseNetworkConsumerPriority="false"`},
		{"every broker refuses this machine: unknown, not none", synth{amq1: "down", amq2: "down"},
			layer.ServeUnknown, "", []string{"both brokers", "refused this machine's connection"}, "no broker could be observed from here: amq1, amq2 refused", "", ""},
		{"no consumers", synth{link: true},
			layer.ServeNone, "", nil, "no watched queue has a consumer", "scenario", ""},
		{"AMQ-2 unreadable but settled by AMQ-1's bridge", synth{amq2: "auth", consumers: []sc{a10, b5}, link: true},
			layer.ServeOne, "A", []string{"broker amq2 could not be observed, but amq1 shows it bridged", "not recognised"}, "", "", ""},
		{"AMQ-2 unreadable and its consumers may win", synth{amq2: "auth", consumers: []sc{{"A", 1, 5, ""}, {"B", 2, 10, ""}}, link: true},
			layer.ServeUnknown, "", nil, "broker amq2 could not be observed (activemq broker amq2 (stomp 10.0.0.2:61613): auth", "", ""},
		{"AMQ-1 down, its bridge still on AMQ-2: A only through that bridge, unverified", synth{amq1: "down", consumers: []sc{a10, b5}, link: true, staleBridge: true},
			layer.ServeOne, "A", []string{"unverified: on amq2/CC.Q the top consumer is a bridge to a broker that could not be observed"}, "", "", ""},
		{"AMQ-2 timing out without a bridge", synth{amq2: "timeout", consumers: []sc{a10}},
			layer.ServeUnknown, "", nil, "shows no network bridge to it, so it may serve its own consumers", "", ""},
		{"two sites tie at the top priority", synth{consumers: []sc{{"A", 1, 10, ""}, {"B", 1, 10, ""}}},
			layer.ServeSplit, "", nil, "site A on amq1/CC.Q; site B on amq1/CC.Q", "", ""},
		{"unmatched consumer on top", synth{consumers: []sc{{"X", 1, 20, ""}, a10}},
			layer.ServeUnknown, "", []string{"matches no site's consumer_match"}, "match no site's consumer_match", "", ""},
		{"unmatched consumer below", synth{consumers: []sc{{"X", 1, 1, ""}, a10}},
			layer.ServeOne, "A", []string{"matches no site's consumer_match"}, "", "", ""},
		{"consumer without connection info on top", synth{consumers: []sc{a10}, unknownCon: true},
			layer.ServeUnknown, "", nil, "no ConnectionInfo advisory", "", ""},
		{"malformed consumer advisories", synth{consumers: []sc{a10, b5}, link: true, malformed: 2},
			layer.ServeUnknown, "", []string{"broker amq1: 2 advisory message(s) could not be decoded; first: /topic/ActiveMQ.Advisory.Consumer.Queue.CC.Q"}, "a consumer may be missing", "", ""},
		{"a queue without consumers", synth{consumers: []sc{a10, {"A", 1, 10, "OTHER.Q"}}, queues: []string{amqQueue, "OTHER.Q", "IDLE.Q"}, link: true},
			layer.ServeOne, "A", []string{"no consumer at all (messages wait there): amq1/IDLE.Q, amq2/IDLE.Q"}, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, obs := tt.s.build()
			l := camq.JudgeDown(inv, obs, nil)
			dump := fmt.Sprintf("state %s site %q\ndetail: %s\nnotes:\n  %s\nrows: %+v\nfix: %s", l.State, l.Site, l.Detail, strings.Join(l.Notes, "\n  "), l.Rows, l.Fix)
			if l.Layer != layer.LayerActiveMQ || l.State != tt.state || l.Site != tt.site {
				t.Fatalf("want %s %q, got\n%s", tt.state, tt.site, dump)
			}
			notes := strings.Join(l.Notes, "\n")
			if want := strings.Contains(strings.Join(tt.notes, "\n"), "unverified:"); l.Unverified != want {
				t.Errorf("Unverified %v, want %v:\n%s", l.Unverified, want, dump)
			}
			for _, n := range tt.notes {
				if !strings.Contains(notes, n) {
					t.Errorf("notes lack %q:\n%s", n, dump)
				}
			}
			if tt.noteAbsent != "" && strings.Contains(notes, tt.noteAbsent) {
				t.Errorf("notes hold %q:\n%s", tt.noteAbsent, dump)
			}
			if !strings.Contains(l.Detail, tt.detail) {
				t.Errorf("detail lacks %q:\n%s", tt.detail, dump)
			}
			if !strings.Contains(l.Fix, tt.fix) || (tt.fix == "" && l.Fix != "") {
				t.Errorf("fix %q, want %q", l.Fix, tt.fix)
			}
		})
	}
}

func TestActiveMQLayerNoInventory(t *testing.T) {
	if l := camq.JudgeDown(&inventory.Inventory{}, nil, nil); l.State != layer.ServeUnknown {
		t.Fatalf("%+v", l)
	}
	// A broker missing from the observations is unknown, not healthy.
	inv, obs := synth{consumers: []sc{{"A", 1, 10, ""}}}.build()
	if l := camq.JudgeDown(inv, obs[:1], nil); l.State != layer.ServeUnknown || !strings.Contains(l.Detail, "amq2") {
		t.Fatalf("%s: %s", l.State, l.Detail)
	}
}

// --- against real brokers ---------------------------------------------------

func observeLayer(inv *inventory.Inventory) (layer.Verdict, []*activemq.BrokerObservation) {
	obs := activemq.ObserveAll(context.Background(), inv.ActiveMQ, nil)
	return camq.JudgeDown(inv, obs, nil), obs
}

func dumpLayer(l layer.Verdict) string {
	var rows []string
	for _, r := range l.Rows {
		rows = append(rows, fmt.Sprintf("%s %s %s: %s", r.Site, r.Name, r.State, r.Detail))
	}
	return fmt.Sprintf("state %s site %q\n detail: %s\n notes:\n  %s\n rows:\n  %s\n fix: %s", l.State, l.Site, l.Detail, strings.Join(l.Notes, "\n  "), strings.Join(rows, "\n  "), l.Fix)
}

// waitLayer observes until the layer is state/site and every note substring
// is present (bridge subscriptions take a moment to propagate).
func waitLayer(t *testing.T, inv *inventory.Inventory, state, site string, notes ...string) layer.Verdict {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		l, _ := observeLayer(inv)
		ok := l.State == state && l.Site == site
		all := strings.Join(l.Notes, "\n")
		for _, n := range notes {
			ok = ok && strings.Contains(all, n)
		}
		if ok {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %s %q with notes %q; last:\n%s", state, site, notes, dumpLayer(l))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

var (
	siteA = func(n int) testenv.ClientOptions {
		return testenv.ClientOptions{ClientID: fmt.Sprintf("site-a-ccm-%d", n), Host: "a-app"}
	}
	siteB = func(n int) testenv.ClientOptions {
		// matched by the STOMP host header only
		return testenv.ClientOptions{Host: "b-app"}
	}
)

func TestActiveMQLayerRealPair(t *testing.T) {
	t.Parallel()
	p := testenv.StartPair(t, testenv.PairOptions{DecreaseNetworkConsumerPriority: "false"})
	inv := amqInventory(p.A.STOMPAddr(), p.B.STOMPAddr())
	// Consumers live as long as the whole test: a consumer subscribed
	// with a subtest's t would be closed when that subtest ends.
	pt := t

	ca := p.A.Subscribe(t, amqQueue, 10, siteA(1))
	cb := p.B.Subscribe(t, amqQueue, 5, siteB(1))

	t.Run("site A has the higher priority", func(t *testing.T) {
		waitLayer(t, inv, layer.ServeOne, "A", "normal operation")
		// and the broker agrees: what is produced on AMQ-2 goes to site A
		p.B.Send(t, amqQueue, 5, testenv.ClientOptions{})
		waitCount(t, ca, 5)
		if cb.Received() != 0 {
			t.Fatalf("site B's consumer got %d messages", cb.Received())
		}
	})
	t.Run("priorities flipped: site B", func(t *testing.T) {
		ca.Close()
		cb.Close()
		ca = p.A.Subscribe(pt, amqQueue, 5, siteA(2))
		cb = p.B.Subscribe(pt, amqQueue, 10, siteB(2))
		waitLayer(t, inv, layer.ServeOne, "B", "failover scenario 3")
	})
	t.Run("site A's consumers stop: site B", func(t *testing.T) {
		ca.Close()
		waitLayer(t, inv, layer.ServeOne, "B", "failover scenario 6")
	})
	t.Run("broker A stops: decided from broker B", func(t *testing.T) {
		p.A.Kill()
		start := time.Now()
		l, obs := observeLayer(inv)
		t.Logf("observing with broker A killed took %s", time.Since(start))
		if !activemq.IsDown(obs[0].Err) || !strings.Contains(obs[0].ErrText, "amq1") || !strings.Contains(obs[0].ErrText, p.A.STOMPAddr()) {
			t.Fatalf("broker A: %v", obs[0].Err)
		}
		if obs[0].Duration > time.Second {
			t.Errorf("the refused broker took %s", obs[0].Duration)
		}
		if l.State != layer.ServeOne || l.Site != "B" || !strings.Contains(strings.Join(l.Notes, "\n"), "failover scenario 2") {
			t.Fatalf("layer:\n%s", dumpLayer(l))
		}
		if b := l.Rows[0].Brief; b != "broker down" {
			t.Errorf("amq1 brief %q", b)
		}
		if b := l.Rows[1].Brief; b != "up, top B@10 local" {
			t.Errorf("amq2 brief %q (%s)", b, l.Rows[1].Detail)
		}
		if l.Rows[0].Name != "amq1" || l.Rows[0].State != "down" {
			t.Fatalf("rows: %+v", l.Rows)
		}
	})
	t.Run("site A's consumers move to AMQ-2: scenario 1", func(t *testing.T) {
		ca = p.B.Subscribe(pt, amqQueue, 20, siteA(3))
		waitLayer(t, inv, layer.ServeOne, "A", "failover scenario 1")
	})
	t.Run("AMQ-1 restores while site A and AMQ-2 are down: scenario 5", func(t *testing.T) {
		ca.Close()
		cb.Close()
		if err := p.A.Restart(); err != nil {
			t.Fatal(err)
		}
		p.B.Kill()
		cb = p.A.Subscribe(pt, amqQueue, 5, siteB(3))
		waitLayer(t, inv, layer.ServeOne, "B", "failover scenario 5")
	})
}

func waitCount(t *testing.T, c *testenv.Consumer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Received() < n {
		if time.Now().After(deadline) {
			t.Fatalf("consumer got %d of %d messages", c.Received(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestActiveMQLayerRealTrap(t *testing.T) {
	t.Parallel()
	p := testenv.StartPair(t, testenv.PairOptions{DecreaseNetworkConsumerPriority: "true"})
	inv := amqInventory(p.A.STOMPAddr(), p.B.STOMPAddr())
	ca := p.A.Subscribe(t, amqQueue, 10, siteA(1))
	cb := p.B.Subscribe(t, amqQueue, 5, siteB(1))
	l := waitLayer(t, inv, layer.ServeSplit, "",
		"decreaseNetworkConsumerPriority trap on broker amq1", "decreaseNetworkConsumerPriority trap on broker amq2", "5.18")
	if !strings.Contains(l.Fix, `decreaseNetworkConsumerPriority="false"`) {
		t.Fatalf("fix %q", l.Fix)
	}
	// The trap is real: site A's higher priority does not pull AMQ-2's
	// messages over the bridge.
	p.B.Send(t, amqQueue, 5, testenv.ClientOptions{})
	waitCount(t, cb, 5)
	if ca.Received() != 0 {
		t.Fatalf("site A's consumer got %d messages", ca.Received())
	}
}

func TestActiveMQLayerRealNoLink(t *testing.T) {
	t.Parallel()
	p := testenv.StartPair(t, testenv.PairOptions{Link: testenv.LinkNone})
	inv := amqInventory(p.A.STOMPAddr(), p.B.STOMPAddr())
	p.A.Subscribe(t, amqQueue, 10, siteA(1))
	p.B.Subscribe(t, amqQueue, 5, siteB(1))
	waitLayer(t, inv, layer.ServeSplit, "", "failover scenario 4", "link between the brokers is down")
}

// A site cut off entirely (no host answers over SSH): its broker times out.
// On its own that is unknown; with the site's loss confirmed (DOWN) the
// other broker decides.
func TestActiveMQLayerSiteDown(t *testing.T) {
	inv, obs := synth{amq1: "timeout", consumers: []sc{{site: "B", broker: 2, prio: 5}}}.build()
	if l := camq.JudgeDown(inv, obs, nil); l.State != layer.ServeUnknown {
		t.Fatalf("broker of a site that may be alive timed out: %s %q, want unknown", l.State, l.Site)
	}
	l := camq.JudgeDown(inv, obs, map[string]bool{"A": true})
	if l.State != layer.ServeOne || l.Site != "B" {
		t.Fatalf("site A down: %s %q (%s), want one B", l.State, l.Site, l.Detail)
	}
	if !strings.Contains(strings.Join(l.Notes, "\n"), "is DOWN (its loss confirmed by independent observers): it counts as down") {
		t.Errorf("notes do not say the broker was taken as down: %v", l.Notes)
	}
	// every broker refused: unknown on this machine's word alone; none
	// once both sites' loss is confirmed
	inv, obs = synth{amq1: "down", amq2: "down"}.build()
	if l := camq.JudgeDown(inv, obs, map[string]bool{"A": true}); l.State != layer.ServeUnknown || !strings.Contains(l.Detail, "amq2 refused") {
		t.Errorf("both refused, only A confirmed down: %s (%s), want unknown naming amq2", l.State, l.Detail)
	}
	if l := camq.JudgeDown(inv, obs, map[string]bool{"A": true, "B": true}); l.State != layer.ServeNone || !strings.Contains(l.Detail, "every broker is down") {
		t.Errorf("both refused, both sites confirmed down: %s (%s), want none", l.State, l.Detail)
	}
	inv, obs = synth{amq1: "timeout", consumers: []sc{{site: "B", broker: 2, prio: 5}}}.build()
	// a site that is down does not excuse a broker of the other site
	if l := camq.JudgeDown(inv, obs, map[string]bool{"B": true}); l.State != layer.ServeUnknown {
		t.Errorf("B down does not settle A's unknown broker: %s", l.State)
	}
}
