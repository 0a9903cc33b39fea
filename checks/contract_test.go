package checks_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	hap "github.com/sitectl/sitectl/adapters/haproxy"
	"github.com/sitectl/sitectl/adapters/mongo"
	"github.com/sitectl/sitectl/checks"
	camq "github.com/sitectl/sitectl/checks/activemq"
	chap "github.com/sitectl/sitectl/checks/haproxy"
	"github.com/sitectl/sitectl/checks/layer"
	cmongo "github.com/sitectl/sitectl/checks/mongodb"
	"github.com/sitectl/sitectl/internal/mongosim"
	testamq "github.com/sitectl/sitectl/internal/testenv/activemq"
	"github.com/sitectl/sitectl/internal/testenv/closedport"
	hx "github.com/sitectl/sitectl/internal/testenv/haproxy"
	"github.com/sitectl/sitectl/internal/testenv/mongod"
	"github.com/sitectl/sitectl/inventory"
)

// contractDeployment is one layer's deployment on real servers, that a
// fixture can put in each state of the contract.
type contractDeployment struct {
	inv *inventory.Inventory
	// strip removes the layer's section from a copy of the inventory.
	strip func(inventory.Inventory) *inventory.Inventory
	// aActive, bActive put the deployment in the state (and return once
	// the servers were told; the contract polls for the verdict).
	aActive, bActive func(t *testing.T)
	// unreachable makes the layer's servers unreachable from sitectl and
	// returns the inventory to observe.
	unreachable func(t *testing.T) *inventory.Inventory
}

type contractFixture struct {
	name  string
	layer layer.Layer
	start func(t *testing.T) *contractDeployment
}

// stateGuard is only a failure guard for states to be reached (elections,
// bridge subscriptions, health checks); a pass never waits for it.
const stateGuard = 60 * time.Second

// TestLayerContract: every layer of checks.Layers(), against real servers,
// says which site serves (A, then B), never claims a loss it could not see,
// and says unknown when its servers cannot be reached.
func TestLayerContract(t *testing.T) {
	fixtures := []contractFixture{
		{"haproxy", chap.Layer{}, haproxyDeployment},
		{"activemq", camq.Layer{}, activemqDeployment},
		{"mongodb", cmongo.Layer{}, mongosimDeployment},
		{"mongodb-real", cmongo.Layer{}, mongodRealDeployment},
	}
	covered := map[string]bool{}
	for _, f := range fixtures {
		covered[f.layer.Name()] = true
	}
	for _, l := range checks.Layers() {
		if !covered[l.Name()] {
			t.Errorf("layer %s (checks.Layers) has no fixture in TestLayerContract: add one", l.Name())
		}
	}
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			d := f.start(t)
			checkStatic(t, f.layer, d)
			ok := t.Run("A-active", func(t *testing.T) {
				d.aActive(t)
				v, o := waitVerdict(t, f.layer, d.inv, "one A", func(v layer.Verdict) bool { return v.State == layer.ServeOne && v.Site == "A" })
				checkUpEvidence(t, f.layer, d.inv, v, o)
			})
			ok = t.Run("B-active", func(t *testing.T) {
				if !ok {
					t.Skip("A-active failed: the deployment is in an unknown state")
				}
				d.bActive(t)
				v, o := waitVerdict(t, f.layer, d.inv, "one B", func(v layer.Verdict) bool { return v.State == layer.ServeOne && v.Site == "B" })
				checkUpEvidence(t, f.layer, d.inv, v, o)
			}) && ok
			t.Run("unreachable", func(t *testing.T) {
				inv := d.unreachable(t)
				o := f.layer.Observe(t.Context(), inv)
				v := o.Verdict(nil)
				where := fmt.Sprintf("%s layer, unreachable (rerun: go test ./checks -run 'TestLayerContract/%s/unreachable' -v)", f.layer.Name(), f.name)
				if v.Layer != f.layer.Name() {
					t.Errorf("%s: verdict's Layer %q, expected %q", where, v.Layer, f.layer.Name())
				}
				if v.State != layer.ServeUnknown {
					t.Errorf("%s: expected verdict unknown (what could not be read is neither one nor none), observed %s %q: %s\n%s",
						where, v.State, v.Site, v.Detail, dumpVerdict(v))
				}
				all := slices.Clone(v.Evidence)
				for _, s := range []string{"A", "B"} {
					all = append(all, o.Evidence(s)...)
				}
				for _, e := range all {
					if e.Saw == layer.SawAlive || e.Saw == layer.SawDown {
						t.Errorf("%s: evidence %q about site %s: expected only %q or %q from an observer that cannot be reached (not reaching it is no evidence)",
							where, e.String(), e.Site, layer.SawNoAnswer, layer.SawAccess)
					}
				}
			})
		})
	}
}

// checkStatic: In, Name and Observers.
func checkStatic(t *testing.T, l layer.Layer, d *contractDeployment) {
	t.Helper()
	if !l.In(d.inv) {
		t.Errorf("%s.In(its inventory) = false, expected true", l.Name())
	}
	stripped := d.strip(*d.inv)
	if l.In(stripped) || l.In(nil) {
		t.Errorf("%s.In(an inventory without its section) = %v, In(nil) = %v: expected false", l.Name(), l.In(stripped), l.In(nil))
	}
	if v := l.Observe(t.Context(), stripped).Verdict(nil); v.State != layer.ServeUnknown || v.Layer != l.Name() {
		t.Errorf("%s observed without its section: %s %s %q, expected layer %s unknown", l.Name(), v.Layer, v.State, v.Site, l.Name())
	}
	for _, site := range []string{"A", "B"} {
		obs := l.Observers(d.inv, site)
		if len(obs) == 0 {
			t.Errorf("%s.Observers(inv, %q) is empty: the layer has parts on site %s, so something outside it must observe it", l.Name(), site, site)
		}
		for _, o := range obs {
			if s := ownerSite(d.inv, o); s == site {
				t.Errorf("%s.Observers(inv, %q) holds %q, which is on site %s itself: a site cannot witness its own loss", l.Name(), site, o, s)
			}
		}
	}
}

// ownerSite is the site of the observer's part ("mongodb mongo-a",
// "activemq amq1"), "" when it belongs to no site (HAProxy, the witness).
func ownerSite(inv *inventory.Inventory, observer string) string {
	kind, name, _ := strings.Cut(observer, " ")
	switch kind {
	case layer.LayerMongoDB:
		for _, m := range inv.MongoDB.Members {
			if m.Name == name {
				return m.Site
			}
		}
	case layer.LayerActiveMQ:
		for _, b := range inv.ActiveMQ.Brokers {
			if b.Name == name {
				return b.Site
			}
		}
	}
	return ""
}

// waitVerdict observes until want holds; stateGuard is only a failure guard.
func waitVerdict(t *testing.T, l layer.Layer, inv *inventory.Inventory, what string, want func(layer.Verdict) bool) (layer.Verdict, layer.Observed) {
	t.Helper()
	deadline := time.Now().Add(stateGuard)
	for {
		o := l.Observe(t.Context(), inv)
		v := o.Verdict(nil)
		if v.Layer != l.Name() {
			t.Fatalf("%s: verdict's Layer %q, expected %q", l.Name(), v.Layer, l.Name())
		}
		if want(v) {
			return v, o
		}
		if time.Now().After(deadline) || t.Context().Err() != nil {
			t.Fatalf("%s layer: expected %s, observed %s %q after %s (the guard): %s\n%s", l.Name(), what, v.State, v.Site, stateGuard, v.Detail, dumpVerdict(v))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkUpEvidence: both sites are up, so nothing says either is down; every
// entry is about the site asked, from one of the layer's observers of it.
func checkUpEvidence(t *testing.T, l layer.Layer, inv *inventory.Inventory, v layer.Verdict, o layer.Observed) {
	t.Helper()
	for _, site := range []string{"A", "B"} {
		observers := l.Observers(inv, site)
		for _, e := range o.Evidence(site) {
			if e.Site != site {
				t.Errorf("%s.Evidence(%q) holds evidence about site %q: %s", l.Name(), site, e.Site, e.String())
			}
			if e.Saw == layer.SawDown {
				t.Errorf("%s.Evidence(%q): %s, but site %s is up (expected no %q)", l.Name(), site, e.String(), site, layer.SawDown)
			}
			if !slices.Contains(observers, e.Observer) {
				t.Errorf("%s.Evidence(%q) comes from %q, not one of Observers(inv, %q) = %q", l.Name(), site, e.Observer, site, observers)
			}
		}
	}
	for _, e := range v.Evidence {
		if e.Saw == layer.SawDown {
			t.Errorf("%s verdict's evidence: %s, but both sites are up", l.Name(), e.String())
		}
	}
}

func dumpVerdict(v layer.Verdict) string {
	var b strings.Builder
	for _, r := range v.Rows {
		fmt.Fprintf(&b, "  row %s %s %s: %s\n", r.Site, r.Name, r.State, r.Detail)
	}
	for _, n := range v.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	for _, e := range v.Evidence {
		fmt.Fprintf(&b, "  evidence about %s: %s\n", e.Site, e.String())
	}
	return b.String()
}

func contractSites() []*inventory.Site {
	return []*inventory.Site{
		{Name: "A", Role: inventory.Primary, ConsumerMatch: []string{"site-a-", "a-app"}},
		{Name: "B", Role: inventory.Secondary, ConsumerMatch: []string{"site-b-", "b-app"}},
	}
}

// --- haproxy: a real haproxy, be_cc (site_a active, site_b backup) --------

func haproxyDeployment(t *testing.T) *contractDeployment {
	h := hx.Start(t)
	api := h.AdminAPI()
	c, err := hap.New(api, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	inv := &inventory.Inventory{Deployment: "contract", Sites: contractSites(),
		HAProxy: &inventory.HAProxy{RuntimeAPI: api, Timeout: inventory.Duration(2 * time.Second), Backends: []*inventory.HAProxyBackend{
			{Name: "be_cc", Servers: map[string]string{"site_a": "A", "site_b": "B"}},
			{Name: "be_rt", Servers: map[string]string{"rt_a": "A", "rt_b": "B"}},
		}}}
	set := func(t *testing.T, states map[[2]string]string) {
		for k, st := range states {
			if err := c.SetState(t.Context(), k[0], k[1], st); err != nil {
				t.Fatalf("haproxy: set server %s/%s state %s: %v", k[0], k[1], st, err)
			}
		}
	}
	return &contractDeployment{
		inv:   inv,
		strip: func(i inventory.Inventory) *inventory.Inventory { i.HAProxy = nil; return &i },
		aActive: func(t *testing.T) {
			set(t, map[[2]string]string{{"be_cc", "site_a"}: hap.Ready, {"be_cc", "site_b"}: hap.Ready, {"be_rt", "rt_a"}: hap.Ready, {"be_rt", "rt_b"}: hap.Drain})
		},
		bActive: func(t *testing.T) {
			set(t, map[[2]string]string{{"be_cc", "site_a"}: hap.Maint, {"be_rt", "rt_a"}: hap.Drain, {"be_rt", "rt_b"}: hap.Ready})
		},
		unreachable: func(t *testing.T) *inventory.Inventory {
			i := *inv
			h2 := *inv.HAProxy
			h2.RuntimeAPI = "tcp://" + closedport.Addr(t)
			i.HAProxy = &h2
			return &i
		},
	}
}

// --- activemq: the real broker pair, consumers of both sites ---------------

func activemqDeployment(t *testing.T) *contractDeployment {
	const queue = "CC.Q"
	p := testamq.StartPair(t, testamq.PairOptions{DecreaseNetworkConsumerPriority: "false"})
	inv := &inventory.Inventory{Deployment: "contract", Sites: contractSites(),
		ActiveMQ: &inventory.ActiveMQ{Timeout: inventory.Duration(3 * time.Second), Queues: []string{queue}, Brokers: []*inventory.Broker{
			{Name: "amq1", Site: "A", STOMP: p.A.STOMPAddr()},
			{Name: "amq2", Site: "B", STOMP: p.B.STOMPAddr()},
		}}}
	// Consumers live as long as the fixture (t), not the state's subtest.
	pt := t
	var consumers []*testamq.Consumer
	subscribe := func(prioA, prioB int, n int) {
		for _, c := range consumers {
			c.Close()
		}
		consumers = []*testamq.Consumer{
			p.A.Subscribe(pt, queue, prioA, testamq.ClientOptions{ClientID: fmt.Sprintf("site-a-ccm-%d", n), Host: "a-app"}),
			p.B.Subscribe(pt, queue, prioB, testamq.ClientOptions{Host: "b-app"}),
		}
	}
	return &contractDeployment{
		inv:     inv,
		strip:   func(i inventory.Inventory) *inventory.Inventory { i.ActiveMQ = nil; return &i },
		aActive: func(*testing.T) { subscribe(10, 5, 1) },
		bActive: func(*testing.T) { subscribe(5, 10, 2) },
		unreachable: func(t *testing.T) *inventory.Inventory {
			i := *inv
			a := *inv.ActiveMQ
			a.Brokers = []*inventory.Broker{
				{Name: "amq1", Site: "A", STOMP: closedport.Addr(t)},
				{Name: "amq2", Site: "B", STOMP: closedport.Addr(t)},
			}
			i.ActiveMQ = &a
			return &i
		},
	}
}

// --- mongodb: the simulator (mongo-a primary on A, priority 2) -------------

func mongoInventory(rs string, addrs [3]string, creds *inventory.Credentials) *inventory.Inventory {
	return &inventory.Inventory{Deployment: "contract", Sites: contractSites(), Witness: &inventory.Witness{Name: "W"},
		MongoDB: &inventory.MongoDB{ReplicaSet: rs, Credentials: creds, Timeout: inventory.Duration(2 * time.Second), PrimaryFollowsActive: true,
			Members: []*inventory.MongoMember{
				{Name: "mongo-a", Address: addrs[0], Site: "A"},
				{Name: "mongo-b", Address: addrs[1], Site: "B"},
				{Name: "mongo-arb", Address: addrs[2], Site: "W", Arbiter: true},
			}}}
}

// movePrimary moves the primary to member with the adapter (priority
// raised first, so no priority takeover undoes it).
func movePrimary(t *testing.T, inv *inventory.Inventory, member string, o mongo.MoveOptions) {
	t.Helper()
	set, err := mongo.NewSet(inv.MongoDB)
	if err != nil {
		t.Fatal(err)
	}
	if p := set.Observe(t.Context()).Primary(); p != nil && p.Member.Name == member {
		return
	}
	o.Timeout = stateGuard
	if _, err := set.MovePrimary(t.Context(), member, o); err != nil {
		t.Fatalf("moving the MongoDB primary to %s: %v", member, err)
	}
}

func mongoStrip(i inventory.Inventory) *inventory.Inventory { i.MongoDB = nil; return &i }

func mongosimDeployment(t *testing.T) *contractDeployment {
	names := [3]string{"mongo-a", "mongo-b", "mongo-arb"}
	s, err := mongosim.Start(mongosim.Config{
		Members:         []mongosim.MemberConfig{{Name: names[0], Priority: 2}, {Name: names[1]}, {Name: names[2], Arbiter: true}},
		ElectionTimeout: time.Second, Heartbeat: 200 * time.Millisecond, InitialPrimary: names[0],
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	inv := mongoInventory("rs0", [3]string{s.Addr(names[0]), s.Addr(names[1]), s.Addr(names[2])}, nil)
	return &contractDeployment{
		inv:   inv,
		strip: mongoStrip,
		aActive: func(t *testing.T) {
			movePrimary(t, inv, "mongo-a", mongo.MoveOptions{CatchUp: time.Second, StepDown: 2 * time.Second})
		},
		bActive: func(t *testing.T) {
			movePrimary(t, inv, "mongo-b", mongo.MoveOptions{CatchUp: time.Second, StepDown: 2 * time.Second})
		},
		unreachable: func(t *testing.T) *inventory.Inventory {
			for _, n := range names {
				s.Stop(n)
			}
			return inv
		},
	}
}

// --- mongodb-real: mongod processes on loopback, or SITECTL_TEST_MONGODB_URI

func mongodRealDeployment(t *testing.T) *contractDeployment {
	var rs string
	var addrs [3]string
	var creds *inventory.Credentials
	if uri := os.Getenv("SITECTL_TEST_MONGODB_URI"); uri != "" {
		if os.Getenv("SITECTL_TEST_MONGODB_DESTRUCTIVE") != "1" {
			t.Skip("real mongod lane NOT run: SITECTL_TEST_MONGODB_URI is set, but the contract moves the primary between members: set SITECTL_TEST_MONGODB_DESTRUCTIVE=1 to allow it")
		}
		cs, err := connstring.ParseAndValidate(uri)
		if err != nil {
			t.Fatalf("SITECTL_TEST_MONGODB_URI does not parse (not shown: it may hold a password)")
		}
		if len(cs.Hosts) != 3 || cs.ReplicaSet == "" {
			t.Skipf("real mongod lane NOT run: SITECTL_TEST_MONGODB_URI names %d hosts and replicaSet %q; the contract needs a PSA set (data, data, arbiter) with replicaSet=", len(cs.Hosts), cs.ReplicaSet)
		}
		rs, addrs = cs.ReplicaSet, [3]string{cs.Hosts[0], cs.Hosts[1], cs.Hosts[2]}
		if cs.Username != "" {
			f := filepath.Join(t.TempDir(), "mongo.cred")
			if err := os.WriteFile(f, []byte(cs.Username+":"+cs.Password+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			creds = &inventory.Credentials{File: f}
		}
		t.Log("real mongod lane: the set in SITECTL_TEST_MONGODB_URI (hosts in order: site A, site B, arbiter)")
	} else {
		set := mongod.StartPSA(t, mongod.Path(t))
		rs, addrs = set.ReplicaSet, [3]string{set.Hosts[0], set.Hosts[1], set.Hosts[2]}
	}
	inv := mongoInventory(rs, addrs, creds)
	// real elections: a 2s election timeout, 10s heartbeat timeout
	move := mongo.MoveOptions{CatchUp: 5 * time.Second, StepDown: 15 * time.Second}
	return &contractDeployment{
		inv:     inv,
		strip:   mongoStrip,
		aActive: func(t *testing.T) { movePrimary(t, inv, "mongo-a", move) },
		bActive: func(t *testing.T) { movePrimary(t, inv, "mongo-b", move) },
		unreachable: func(t *testing.T) *inventory.Inventory {
			// the same set, its members behind ports that refuse
			i := *inv
			m := *inv.MongoDB
			m.Members = nil
			for _, mm := range inv.MongoDB.Members {
				c := *mm
				c.Address = closedport.Addr(t)
				m.Members = append(m.Members, &c)
			}
			i.MongoDB = &m
			return &i
		},
	}
}
